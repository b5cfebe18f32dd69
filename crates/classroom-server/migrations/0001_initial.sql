-- The classroom's model. Portable SQL (SQLite now, PostgreSQL later): ids are TEXT made by the
-- server, times are BIGINT milliseconds since the Unix epoch, flags are BOOLEAN, no
-- AUTOINCREMENT/SERIAL and no engine-specific functions.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    -- 'account' (has a password) or 'guest' (joined one live room by invite code).
    kind TEXT NOT NULL CHECK (kind IN ('account', 'guest')),
    username TEXT UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    guest_live_room_id TEXT,
    created_at BIGINT NOT NULL,
    CHECK ((kind = 'account' AND username IS NOT NULL AND password_hash IS NOT NULL)
        OR (kind = 'guest' AND guest_live_room_id IS NOT NULL))
);

-- Opaque bearer tokens, stored as their SHA-256 so a copy of the database signs nobody in.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE channel_members (
    channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('manager', 'moderator', 'member')),
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE live_rooms (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    name TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    invite_code TEXT NOT NULL UNIQUE,
    participants_may_record BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE breakout_rooms (
    id TEXT PRIMARY KEY,
    live_room_id TEXT NOT NULL REFERENCES live_rooms (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (live_room_id, position)
);

-- Accounts that joined a live room by its invite code (participants unless moderators anyway).
CREATE TABLE live_room_joins (
    live_room_id TEXT NOT NULL REFERENCES live_rooms (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (live_room_id, user_id)
);

-- tus uploads in progress (and finished ones, which point at their media entry).
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users (id),
    live_room_id TEXT NOT NULL REFERENCES live_rooms (id),
    breakout_room_id TEXT NOT NULL REFERENCES breakout_rooms (id),
    title TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    upload_length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    storage_key TEXT NOT NULL UNIQUE,
    -- The Upload-Metadata header as sent, echoed on HEAD as tus requires.
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX uploads_expiry ON uploads (expires_at);

-- A finished recording. upload_id is UNIQUE: completing an upload twice (a retried last PATCH)
-- can never make a second entry.
CREATE TABLE media (
    id TEXT PRIMARY KEY,
    upload_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    recorder_id TEXT NOT NULL REFERENCES users (id),
    live_room_id TEXT NOT NULL REFERENCES live_rooms (id),
    breakout_room_id TEXT NOT NULL REFERENCES breakout_rooms (id),
    channel_id TEXT NOT NULL REFERENCES channels (id),
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    -- Where it is filed besides its live room's Breakout recordings folder (always there).
    in_my_media BOOLEAN NOT NULL,
    in_channel BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_live_room ON media (live_room_id, breakout_room_id);
CREATE INDEX media_recorder ON media (recorder_id);
CREATE INDEX media_channel ON media (channel_id);
