package web

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the OpenAPI 3 description of the API; openapi_test.go checks
// that it documents every route of the router and nothing else.
//
//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapiDoc)
}
