-- The web interface (issue 8): a user's language for the pages ("" follows
-- the browser). Not personal data: one of the supported language tags.
ALTER TABLE users ADD COLUMN lang TEXT NOT NULL DEFAULT '';
