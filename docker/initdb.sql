-- Roles for docker-compose: the owner migrates, the app role only reads and writes under RLS.
CREATE ROLE portal_owner LOGIN PASSWORD 'owner-password';
CREATE ROLE portal_app LOGIN PASSWORD 'app-password' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE portal OWNER portal_owner;
