package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads a JSON object into dst strictly: the right content type,
// at most MaxBodyBytes, valid UTF-8, no unknown fields, nothing after it.
// It writes the problem response itself and returns false on failure.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeProblem(w, r, http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json", nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes), nil)
			return false
		}
		writeProblem(w, r, http.StatusBadRequest, "could not read the request body", nil)
		return false
	}
	if !utf8.Valid(body) {
		writeProblem(w, r, http.StatusBadRequest, "request body is not valid UTF-8", nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeProblem(w, r, http.StatusBadRequest, jsonErrorDetail(err), nil)
		return false
	}
	if dec.More() {
		writeProblem(w, r, http.StatusBadRequest, "unexpected data after the JSON object", nil)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, r, http.StatusBadRequest, "unexpected data after the JSON object", nil)
		return false
	}
	return true
}

// jsonErrorDetail describes a decoding error without echoing input values.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, jsonType(te.Type.String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.EOF):
		return "empty request body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

func jsonType(goType string) string {
	switch {
	case strings.Contains(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	}
	return "of another type"
}
