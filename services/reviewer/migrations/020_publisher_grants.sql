-- What the publisher reads of the reviewer's schema (docs/design.md, "Who reads what"):
-- a version's review and sign-off, how its quarantined rows were handled (the public view
-- leaves out isolated and dropped rows and shows corrected values), and the standard it
-- was decided under. Read only.
GRANT USAGE ON SCHEMA reviewer TO odp_publisher;
GRANT SELECT ON reviews, signoffs, quarantine, standards TO odp_publisher;
