-- What operators did to this service's dead letters: who, when, which letters, why, and what came of it.
CREATE TABLE operator_actions (
    id          bigserial    PRIMARY KEY,
    at          timestamptz  NOT NULL DEFAULT now(),
    operator    varchar(64)  NOT NULL,
    action      varchar(16)  NOT NULL CHECK (action IN ('replay', 'discard')),
    letter_ids  bigint[]     NOT NULL,
    reason      text         NOT NULL,
    outcome     jsonb        NOT NULL
);
CREATE INDEX operator_actions_at ON operator_actions (at DESC);
CREATE INDEX dead_letters_newest ON dead_letters (last_failed_at DESC, id DESC);
CREATE INDEX dead_letters_message ON dead_letters (message_id) WHERE message_id IS NOT NULL;
