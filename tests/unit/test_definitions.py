"""The registry of the four services and what each declares on its definition."""

from __future__ import annotations

from services.definitions import DEFINITIONS, definition_of
from shared.events import registry
from shared.settings import SERVICES
from shared.topics import events_pattern


def test_the_registry_lists_the_four_services_in_the_settings_order() -> None:
    assert tuple(DEFINITIONS) == SERVICES
    assert all(definition_of(name).name == name for name in SERVICES)


def test_every_subscription_reacts_to_events_it_names_once_and_reads_their_topics() -> None:
    names = [s.name for d in DEFINITIONS.values() for s in d.subscriptions]
    assert len(names) == len(set(names))
    for definition in DEFINITIONS.values():
        for subscription in definition.subscriptions:
            assert subscription.name.startswith(f"{definition.name}.")
            types = subscription.event_types
            if types is None:  # an integration contract, not domain events
                assert not any(registry.knows_model(m) for m in subscription.reactions)
                continue
            assert types == {registry.type_of(m) for m in subscription.reactions}
            contexts = {m.__module__.rsplit(".", 1)[-1] for m in subscription.reactions}
            assert len(contexts) == 1, f"{subscription.name} reads one context's topics"
            assert subscription.topics(["331122"]) == events_pattern(contexts.pop(), ["331122"])


def test_replay_reads_the_contexts_whose_events_feed_foreign_read_models() -> None:
    for definition in DEFINITIONS.values():
        assert definition.name not in definition.foreign_read_models
        assert set(definition.foreign_read_models) <= set(SERVICES)
    assert set(definition_of("archive").foreign_read_models) == {"intake", "review", "clarification"}
    assert definition_of("clarification").replay_exclude == {"documents", "document_numbers"}
