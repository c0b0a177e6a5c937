-- Documents fit to issue: each keeps its 发文字号 and its layout (organ, title, addressee, body, 署名,
-- 成文日期, 抄送, 印发机关和印发日期) as the command issued it; DOCX and PDF are rendered from that layout.
-- The numbers are allocated in the issuing command's transaction, one sequence per organ, series and
-- year; replay never touches either table.

ALTER TABLE documents ADD COLUMN number text NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN layout jsonb;

CREATE TABLE document_numbers (
    jurisdiction text    NOT NULL,
    series       text    NOT NULL,
    year         integer NOT NULL,
    last         integer NOT NULL,
    PRIMARY KEY (jurisdiction, series, year)
);
