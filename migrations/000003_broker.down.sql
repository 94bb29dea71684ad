DROP TABLE IF EXISTS broker_settings;
DROP TABLE IF EXISTS broker_connections;
