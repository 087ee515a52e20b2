-- Push hardening.
--   credit   the transfer rules' credit at push.begin: the client was told it, and the
--            registrar holds it to that number of chunks in flight for the upload's life
ALTER TABLE uploads ADD COLUMN credit integer;
