package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// oaMethods are the operation keys of an OpenAPI path item.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaLoad parses the embedded document (the bytes that are served).
func oaLoad(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openapiDoc))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

func oaObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func oaStr(v any) string {
	s, _ := v.(string)
	return s
}

// TestOpenAPIHeader checks the version and info of the document.
func TestOpenAPIHeader(t *testing.T) {
	doc := oaLoad(t)
	if v := oaStr(doc["openapi"]); !strings.HasPrefix(v, "3.") {
		t.Errorf(`"openapi" is %q, want a 3.x version`, v)
	}
	info := oaObj(doc["info"])
	if info == nil {
		t.Fatal(`openapi.json has no "info" object`)
	}
	if oaStr(info["title"]) == "" {
		t.Error(`openapi.json: info.title is missing or empty`)
	}
	if oaStr(info["version"]) == "" {
		t.Error(`openapi.json: info.version is missing or empty`)
	}
	if oaObj(doc["paths"]) == nil {
		t.Fatal(`openapi.json has no "paths" object`)
	}
}

// TestOpenAPIDocumentsEveryRoute checks that every route of the router is
// described, with an operationId, responses and the right security.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := oaLoad(t)
	paths := oaObj(doc["paths"])
	schemes := oaObj(oaObj(doc["components"])["securitySchemes"])
	topSecurity, hasTopSecurity := doc["security"]
	for _, rt := range Routes() {
		name := rt.Method + " " + rt.Pattern
		item := oaObj(paths[rt.Pattern])
		if item == nil {
			t.Errorf("route %s is not documented: openapi.json has no path %q", name, rt.Pattern)
			continue
		}
		op := oaObj(item[strings.ToLower(rt.Method)])
		if op == nil {
			t.Errorf("route %s is not documented: path %q in openapi.json has no %q operation", name, rt.Pattern, strings.ToLower(rt.Method))
			continue
		}
		if oaStr(op["operationId"]) == "" {
			t.Errorf("route %s: operation has no operationId", name)
		}
		if oaStr(op["summary"]) == "" {
			t.Errorf("route %s: operation has no summary", name)
		}
		responses := oaObj(op["responses"])
		if len(responses) == 0 {
			t.Errorf("route %s: operation has no responses", name)
		} else if !slices.ContainsFunc(oaKeys(responses), func(code string) bool {
			// A success is a 2xx, or a redirect for the browser flows.
			return strings.HasPrefix(code, "2") || strings.HasPrefix(code, "3")
		}) {
			t.Errorf("route %s: operation documents no 2xx or 3xx response", name)
		}
		oaCheckPathParams(t, doc, name, rt.Pattern, item, op)

		sec, has := op["security"]
		if !has {
			sec, has = topSecurity, hasTopSecurity
		}
		reqs, isList := sec.([]any)
		switch {
		case rt.Auth && (!has || !isList || len(reqs) == 0):
			t.Errorf("route %s needs authentication but its security is missing or empty", name)
		case rt.Auth:
			for _, r := range reqs {
				req := oaObj(r)
				if len(req) == 0 {
					t.Errorf("route %s needs authentication but has an empty (anonymous) security requirement", name)
				}
				for scheme := range req {
					if schemes[scheme] == nil {
						t.Errorf("route %s: security scheme %q is not in components.securitySchemes", name, scheme)
					}
				}
			}
		default:
			if _, explicit := op["security"]; !explicit || !isList || len(reqs) != 0 {
				t.Errorf("route %s is public but its operation does not say security: [] (got %v)", name, sec)
			}
		}
	}
}

var oaPathParam = regexp.MustCompile(`\{([^}]+)\}`)

// oaCheckPathParams checks that the path template's parameters and the
// documented in: path parameters are the same.
func oaCheckPathParams(t *testing.T, doc map[string]any, name, pattern string, item, op map[string]any) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range oaPathParam.FindAllStringSubmatch(pattern, -1) {
		want[m[1]] = true
	}
	got := map[string]bool{}
	for _, list := range []any{item["parameters"], op["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			pm := oaObj(p)
			if ref := oaStr(pm["$ref"]); ref != "" {
				target, ok := oaResolve(doc, ref)
				if !ok {
					continue // reported by TestOpenAPIRefsResolve
				}
				pm = oaObj(target)
			}
			if oaStr(pm["in"]) != "path" {
				continue
			}
			got[oaStr(pm["name"])] = true
			if pm["required"] != true {
				t.Errorf("route %s: path parameter %q must be required: true", name, oaStr(pm["name"]))
			}
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("route %s: path parameter {%s} is not documented", name, p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("route %s: documents path parameter %q that the path has not", name, p)
		}
	}
}

// TestOpenAPIDocumentsNoExtraRoute checks that everything documented is a
// route of the router.
func TestOpenAPIDocumentsNoExtraRoute(t *testing.T) {
	doc := oaLoad(t)
	routes := map[string]bool{}
	for _, rt := range Routes() {
		routes[strings.ToUpper(rt.Method)+" "+rt.Pattern] = true
	}
	paths := oaObj(doc["paths"])
	for _, path := range oaKeys(paths) {
		item := oaObj(paths[path])
		if item == nil {
			t.Errorf("openapi.json: path %q is not an object", path)
			continue
		}
		n := 0
		for _, m := range oaMethods {
			if _, ok := item[m]; !ok {
				continue
			}
			n++
			if !routes[strings.ToUpper(m)+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not a route in server.go", strings.ToUpper(m), path)
			}
		}
		if n == 0 {
			t.Errorf("openapi.json: path %q has no operation", path)
		}
	}
}

// TestOpenAPIRefsResolve walks the whole document and checks that every
// $ref points at an existing component.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := oaLoad(t)
	n := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range oaKeys(v) {
				if k == "$ref" {
					ref, ok := v[k].(string)
					n++
					switch {
					case !ok:
						t.Errorf("%s: $ref is not a string", at)
					case !strings.HasPrefix(ref, "#/components/"):
						t.Errorf("%s: $ref %q does not point into #/components/", at, ref)
					default:
						if _, found := oaResolve(doc, ref); !found {
							t.Errorf("%s: $ref %q does not resolve", at, ref)
						}
					}
					continue
				}
				walk(v[k], at+"/"+oaEscape(k))
			}
		case []any:
			for i, e := range v {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	if n == 0 {
		t.Error("openapi.json uses no $ref at all; the shared components are expected to be referenced")
	}
}

// TestOpenAPIOperationIDsUnique checks operationIds are unique.
func TestOpenAPIOperationIDsUnique(t *testing.T) {
	doc := oaLoad(t)
	seen := map[string]string{}
	paths := oaObj(doc["paths"])
	for _, path := range oaKeys(paths) {
		item := oaObj(paths[path])
		for _, m := range oaMethods {
			op := oaObj(item[m])
			if op == nil {
				continue
			}
			id := oaStr(op["operationId"])
			if id == "" {
				continue // reported by TestOpenAPIDocumentsEveryRoute
			}
			where := strings.ToUpper(m) + " " + path
			if prev, dup := seen[id]; dup {
				t.Errorf("operationId %q is used by both %s and %s", id, prev, where)
			}
			seen[id] = where
		}
	}
}

// TestOpenAPIServed checks the handler serves the embedded document.
func TestOpenAPIServed(t *testing.T) {
	rec := httptest.NewRecorder()
	(&Server{}).openapi(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), openapiDoc) {
		t.Error("served body differs from the embedded openapi.json")
	}
}

// oaResolve resolves a local JSON pointer reference ("#/a/b").
func oaResolve(doc map[string]any, ref string) (any, bool) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	var cur any = doc
	if p == "" {
		return cur, true
	}
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func oaEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// oaKeys returns the keys of m, sorted, for stable messages.
func oaKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
