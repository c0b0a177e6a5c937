-- A term's clean end is trusted only by the producer that comes right after it on Kafka: the
-- term that ends clean records its producer's id and epoch, and the next term skips reconciling
-- only when fencing gave it the same id and the very next epoch. Any other producer started under
-- the transactional id in between (a relay of an older release during a rolling upgrade, a
-- database restored to before later terms) bumped the epoch again, or the id expired and Kafka
-- gave a new one: that term reconciles. A row without a producer, as every one is after this
-- migration, is trusted by nobody, so the first term after it reconciles.
ALTER TABLE relay_term ADD COLUMN producer_id bigint, ADD COLUMN producer_epoch integer;
