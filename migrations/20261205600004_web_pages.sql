-- The web pages' lists, paged in their display order within one commit without a sort of the
-- whole commit: issues by file and line, coverage files by percentage (or path) then path.
CREATE INDEX issues_commit_file_line ON issues (commit_id, file, line_start, id);
CREATE INDEX coverage_files_info_percent ON coverage_files (coverage_info_id, percent_covered, file);
