// Package csvio reads customer CSV files for import and writes CSV files
// for export in a way that is safe to open in a spreadsheet.
//
// # Reading
//
// [NewReader] accepts the files people actually produce: UTF-8 with or
// without a byte order mark, and GBK/GB18030, which is what Excel on
// Chinese Windows writes when a sheet is saved as "CSV (逗号分隔)". In "auto"
// mode the encoding is detected from the first 64 KiB of the file. The first
// record is the header; each header cell is mapped to a canonical column name
// (see [Reader.Columns]) through a built-in table of English and Chinese
// aliases plus any aliases supplied by the caller.
//
// [Reader.Next] returns one [Row] per record. Problems that affect a single
// record (wrong number of fields, malformed quoting, invalid encoding, an
// oversized value) are reported as a [*RowError] carrying the 1-based line
// number where the record starts in the file; the caller may record it and
// call Next again. Any other error is fatal and is returned again by every
// later call.
//
// Cell values are personal data. No error produced by this package ever
// contains a cell value: messages carry only line numbers, column names and
// a description of the problem. Header cells are not considered personal data
// and may be quoted (truncated) in header errors.
//
// # Writing
//
// [Writer] writes UTF-8 CSV, optionally with a leading byte order mark so
// that Excel displays Chinese text correctly, and passes every cell through
// [SafeCell] to neutralize spreadsheet formula injection ("CSV injection").
package csvio
