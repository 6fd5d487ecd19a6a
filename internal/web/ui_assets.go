package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
)

// The pages' stylesheet and script. Their URLs carry a hash of the content
// (?v=), so they can be cached for a year and still change with a release.
//
//go:embed assets/*
var uiAssetFiles embed.FS

type uiAssetFile struct {
	body    []byte
	ctype   string
	version string // first 16 hex digits of the SHA-256 of body
}

var uiAssetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
}

// uiAssets are the embedded assets by file name; they never change.
var uiAssets = mustLoadAssets()

func mustLoadAssets() map[string]uiAssetFile {
	names, err := fs.Glob(uiAssetFiles, "assets/*")
	if err != nil {
		panic(err)
	}
	out := map[string]uiAssetFile{}
	for _, n := range names {
		ctype, ok := uiAssetTypes[path.Ext(n)]
		if !ok {
			panic("web: asset of unknown type: " + n)
		}
		b, err := uiAssetFiles.ReadFile(n)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out[path.Base(n)] = uiAssetFile{body: b, ctype: ctype, version: hex.EncodeToString(sum[:8])}
	}
	return out
}

// assetURL is the versioned URL of an asset (a template function).
func assetURL(name string) (string, error) {
	a, ok := uiAssets[name]
	if !ok {
		return "", fs.ErrNotExist
	}
	return "/assets/" + name + "?v=" + a.version, nil
}

// uiAsset serves GET /assets/{file}. The current version is cached for a
// year; a request for another version (or none) must revalidate.
func uiAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := uiAssets[r.PathValue("file")]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	h.Set("ETag", `"`+a.version+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if r.URL.Query().Get("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match == `"`+a.version+`"` {
		h.Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}
