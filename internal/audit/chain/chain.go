// Package chain defines the canonical encoding of an audit event and the hash
// chain over it. It has no dependencies, so the store (which serializes
// appends) and the audit package (which verifies them) share one definition.
//
// hash(n) = SHA-256(prefix ‖ hash(n-1) ‖ seq ‖ at ‖ len-prefixed fields)
//
// where hash(0) is 32 zero bytes, seq and at (unix microseconds, UTC) are
// 8-byte big-endian integers, and each text field is a 4-byte big-endian
// length followed by its bytes, in the order of Fields. Details are hashed as
// the exact stored JSON text, so personal values sealed inside them are
// covered as ciphertext.
package chain

import (
	"crypto/sha256"
	"encoding/binary"
)

// Size is the length of a chain hash.
const Size = sha256.Size

// Genesis is the hash before the first event.
var Genesis = make([]byte, Size)

// prefix separates this format from any other use of SHA-256.
const prefix = "custos.audit.v1\x00"

// Fields are an event's text columns in hashing order.
type Fields struct {
	Actor, IP, UserAgent, Action, ObjectType, ObjectID, Outcome, Reason, RequestID, Details string
}

// Encode appends the canonical encoding of an event (without the previous
// hash) to buf.
func Encode(buf []byte, seq, atMicros int64, f Fields) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(seq))
	buf = binary.BigEndian.AppendUint64(buf, uint64(atMicros))
	for _, s := range [...]string{f.Actor, f.IP, f.UserAgent, f.Action, f.ObjectType, f.ObjectID, f.Outcome, f.Reason, f.RequestID, f.Details} {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	return buf
}

// Hasher computes chain hashes, reusing its buffer (not safe for concurrent use).
type Hasher struct{ buf []byte }

// Hash returns the chain hash of the event after prev.
func (h *Hasher) Hash(prev []byte, seq, atMicros int64, f Fields) []byte {
	h.buf = append(h.buf[:0], prefix...)
	h.buf = append(h.buf, prev...)
	h.buf = Encode(h.buf, seq, atMicros, f)
	sum := sha256.Sum256(h.buf)
	return sum[:]
}

// Hash is Hasher.Hash with a fresh buffer.
func Hash(prev []byte, seq, atMicros int64, f Fields) []byte {
	var h Hasher
	return h.Hash(prev, seq, atMicros, f)
}
