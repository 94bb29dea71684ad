DROP TRIGGER users_with_confirmations_kept ON users;
DROP FUNCTION refuse_delete_user_with_confirmations();
DROP TRIGGER confirmations_never_deleted ON confirmations;
DROP TRIGGER signals_never_deleted ON signals;
DROP FUNCTION refuse_delete();

ALTER TABLE confirmation_events ADD CONSTRAINT confirmation_events_confirmation_id_fkey
    FOREIGN KEY (confirmation_id) REFERENCES confirmations (id);
ALTER TABLE confirmations ADD CONSTRAINT confirmations_signal_id_fkey
    FOREIGN KEY (signal_id) REFERENCES signals (id);
ALTER TABLE confirmations ADD CONSTRAINT confirmations_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id);
