// Package exportfile writes approved customer exports: a CSV or XLSX file
// carrying a watermark (which export, who asked, who approved, when),
// encrypted with age (filippo.io/age) to a password or to an X25519
// recipient, so the file that leaves Custos opens only with its key and
// names the people responsible for it.
//
// Nothing here touches the disk: rows go from the caller, through the CSV
// or XLSX writer (XLSX is assembled in memory), into the age encryptor, into
// the caller's io.Writer. The XLSX library is given a temporary directory
// that does not exist, so a code path of it that would spill plaintext to a
// temporary file fails instead.
//
// A password is never kept. DerivePasswordKey runs age's scrypt derivation
// once, when the export is requested, and returns the salt, the work factor
// and the derived wrapping key: exactly what a standard age scrypt stanza
// needs (PasswordKey.Recipient). The caller seals that key until the file is
// produced and erases it afterwards. `age -d` asks for the password, derives
// the same key from the stanza's salt and work factor, and opens the file.
package exportfile
