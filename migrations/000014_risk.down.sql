DROP TABLE risk_users;
DROP TABLE risk_platform;
