DROP TABLE broker_session_prefs;
DROP TABLE reply_question_overrides;
ALTER TABLE confirmation_events DROP COLUMN question;
