-- The user directory (用户目录): the commission's officers who log in, with what they may do.
-- Shared by the four services (one schema, `directory`); the password is an argon2id hash.
CREATE TABLE users (
    user_id         text        PRIMARY KEY,
    name            text        NOT NULL,              -- 姓名
    roles           text[]      NOT NULL,              -- the first is the one a login gets unless it asks
    unit            text        NOT NULL,              -- e.g. 缙云县纪委监委
    office          text        NOT NULL,              -- 信访室, 案件审理室, 第三纪检监察室, 主要负责人 ...
    cadre_authority text        NOT NULL CHECK (cadre_authority IN ('city', 'county')),  -- 管理权限
    jurisdictions   text[]      NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    password_hash   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(roles) > 0 AND cardinality(jurisdictions) > 0)
);
