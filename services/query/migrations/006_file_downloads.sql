-- A released file downloads as its pushed bytes (format 'file'), chunk by chunk under the
-- same credit, its served hash kept as a version's is.
ALTER TABLE downloads DROP CONSTRAINT downloads_format_check;
ALTER TABLE downloads ADD CONSTRAINT downloads_format_check
    CHECK (format IN ('csv', 'jsonl', 'file'));
