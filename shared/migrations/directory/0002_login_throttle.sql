-- Repeated failed logins lock a user for a while (a password cannot be guessed at the speed of the
-- network); a successful login, or enabling the user again, clears the count.
ALTER TABLE users ADD COLUMN failed_logins integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until timestamptz;
