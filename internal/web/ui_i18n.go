package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"golang.org/x/text/language"
)

// The identity pages speak Simplified Chinese (the default) and English.
// Every user-facing string lives in a catalogue under i18n/, one flat JSON
// object of key → message per language; messages with arguments use fmt
// verbs. Both catalogues must have the same keys (ui_test.go checks).
//
//go:embed i18n/*.json
var uiCatalogueFiles embed.FS

const (
	langZH = "zh-CN"
	langEN = "en"

	// langCookie remembers the choice made with a ?lang= switch link.
	langCookie = "lang"
)

// uiLangs are the supported languages, the default first.
var uiLangs = []string{langZH, langEN}

var uiMatcher = language.NewMatcher([]language.Tag{language.MustParse(langZH), language.MustParse(langEN)})

// locale is one language's catalogue.
type locale struct {
	tag  string
	msgs map[string]string
}

// uiLocales holds the parsed catalogues; they never change after init.
var uiLocales = mustLoadLocales()

func mustLoadLocales() map[string]*locale {
	out, err := loadLocales(uiCatalogueFiles)
	if err != nil {
		panic(err)
	}
	return out
}

// loadLocales reads the catalogues: i18n/<tag>.json and, for each area of
// the pages, i18n/<area>.<tag>.json. A language's files are merged; a key
// defined twice is an error, so two areas cannot silently override each
// other.
func loadLocales(fsys fs.FS) (map[string]*locale, error) {
	out := make(map[string]*locale, len(uiLangs))
	for _, tag := range uiLangs {
		out[tag] = &locale{tag: tag, msgs: map[string]string{}}
	}
	names, err := fs.Glob(fsys, "i18n/*.json")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".json")
		var loc *locale
		for _, tag := range uiLangs {
			if base == tag || strings.HasSuffix(base, "."+tag) {
				loc = out[tag]
			}
		}
		if loc == nil {
			return nil, fmt.Errorf("web: catalogue %s: name must end in .<language>.json (%s)", n, strings.Join(uiLangs, ", "))
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("web: catalogue %s: %w", n, err)
		}
		var msgs map[string]string
		if err := json.Unmarshal(b, &msgs); err != nil {
			return nil, fmt.Errorf("web: catalogue %s: %w", n, err)
		}
		for k, v := range msgs {
			if _, dup := loc.msgs[k]; dup {
				return nil, fmt.Errorf("web: catalogue %s: key %q is defined twice", n, k)
			}
			loc.msgs[k] = v
		}
	}
	return out, nil
}

// T returns the message of key, formatted with args when there are any. A
// missing key is an error, so a template that uses one fails to render
// (and the tests notice) instead of showing a raw key.
func (l *locale) T(key string, args ...any) (string, error) {
	m, ok := l.msgs[key]
	if !ok {
		return "", fmt.Errorf("web: no %s message %q", l.tag, key)
	}
	if len(args) > 0 {
		m = fmt.Sprintf(m, args...)
	}
	return m, nil
}

// has reports whether the catalogue has key.
func (l *locale) has(key string) bool {
	_, ok := l.msgs[key]
	return ok
}

// supportedLang returns the canonical tag of a supported language named by v
// (case-insensitively), or "".
func supportedLang(v string) string {
	for _, tag := range uiLangs {
		if strings.EqualFold(v, tag) {
			return tag
		}
	}
	return ""
}

// pickLang chooses the page language: a ?lang= switch (remembered in the
// lang cookie), else the lang cookie, else (once signed in, see userLang)
// the user's chosen language, else the best match of Accept-Language, else
// Chinese.
func (s *Server) pickLang(w http.ResponseWriter, r *http.Request) *locale {
	if tag := supportedLang(r.URL.Query().Get("lang")); tag != "" {
		s.setLangCookie(w, tag)
		return uiLocales[tag]
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if tag := supportedLang(c.Value); tag != "" {
			return uiLocales[tag]
		}
	}
	return uiLocales[matchAcceptLanguage(r.Header.Get("Accept-Language"))]
}

// setLangCookie remembers a language in this browser ("" forgets it).
func (s *Server) setLangCookie(w http.ResponseWriter, tag string) {
	maxAge := 365 * 24 * 3600
	if tag == "" {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: tag, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
}

// userLang applies a signed-in user's chosen language to a page that has
// no language of its own (no ?lang= and no cookie), and remembers it in
// the browser.
func (s *Server) userLang(w http.ResponseWriter, r *http.Request, p *page, userID string) {
	if r.URL.Query().Get("lang") != "" {
		return
	}
	if _, err := r.Cookie(langCookie); err == nil {
		return
	}
	lang, err := s.auth.Language(r.Context(), userID)
	if tag := supportedLang(lang); err == nil && tag != "" {
		p.loc, p.Lang = uiLocales[tag], tag
		s.setLangCookie(w, tag)
	}
}

// matchAcceptLanguage returns the supported language that best matches an
// Accept-Language header, or the default.
func matchAcceptLanguage(header string) string {
	if header == "" || len(header) > 1024 {
		return uiLangs[0]
	}
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(tags) == 0 {
		return uiLangs[0]
	}
	_, i, conf := uiMatcher.Match(tags...)
	if conf == language.No {
		return uiLangs[0]
	}
	return uiLangs[i]
}
