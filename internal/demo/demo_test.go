package demo

import (
	"github.com/custos/custos/internal/normalize"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var testNow = time.Date(2025, 6, 10, 14, 30, 0, 0, time.FixedZone("CST", 8*3600))

func sample(t testing.TB, seed uint64, n int) []Customer {
	t.Helper()
	cs := New(seed, testNow).Customers(n)
	if len(cs) != n {
		t.Fatalf("Customers(%d) returned %d", n, len(cs))
	}
	return cs
}

func TestDeterministic(t *testing.T) {
	a := New(42, testNow).Customers(500)
	b := New(42, testNow).Customers(500)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed and now produced different customers")
	}
	g := New(42, testNow)
	for i := range a {
		if c := g.Customer(); !reflect.DeepEqual(c, a[i]) {
			t.Fatalf("Customer() #%d differs from Customers(n)[%d]", i, i)
		}
	}
	if reflect.DeepEqual(a, New(43, testNow).Customers(500)) {
		t.Fatal("different seeds produced identical customers")
	}
	if got := New(1, testNow).Customers(0); len(got) != 0 {
		t.Fatalf("Customers(0) = %d customers", len(got))
	}
}

// checkIDMod112 verifies an 18-character PRC resident ID number with the
// pure ISO 7064 MOD 11-2 system: sum(a_i * 2^(17-i)) over all 18 characters,
// with X = 10, must be congruent to 1 mod 11.
func checkIDMod112(id string) bool {
	if len(id) != 18 {
		return false
	}
	sum, pow := 0, 1 // 2^0 for the last character
	for i := 17; i >= 0; i-- {
		var v int
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c == 'X' && i == 17:
			v = 10
		default:
			return false
		}
		sum += v * pow
		pow = pow * 2 % 11
	}
	return sum%11 == 1
}

func TestCheckIDMod112(t *testing.T) {
	// Published sample numbers from GB 11643-1999 and common documentation.
	for _, id := range []string{"11010519491231002X", "440524188001010014"} {
		if !checkIDMod112(id) {
			t.Errorf("known good ID %s rejected", id)
		}
	}
	if checkIDMod112("110105194912310021") {
		t.Error("bad checksum accepted")
	}
}

var provincePrefixes = strings.Fields("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65")

func TestIDNumbers(t *testing.T) {
	re := regexp.MustCompile(`^\d{17}[\dX]$`)
	lo := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2004, 12, 31, 0, 0, 0, 0, time.UTC)
	seen := 0
	for _, c := range sample(t, 7, 5000) {
		if c.IDNumber == "" {
			continue
		}
		seen++
		id := c.IDNumber
		if c.Kind != "person" {
			t.Fatalf("company %q has ID number %s", c.Name, id)
		}
		if !re.MatchString(id) {
			t.Fatalf("malformed ID %q", id)
		}
		if !checkIDMod112(id) {
			t.Fatalf("ID %s fails the MOD 11-2 checksum", id)
		}
		if !slices.Contains(provincePrefixes, id[:2]) || id[2:6] == "0000" {
			t.Fatalf("ID %s has implausible area code", id)
		}
		birth, err := time.Parse("20060102", id[6:14])
		if err != nil || birth.Format("20060102") != id[6:14] {
			t.Fatalf("ID %s has invalid birth date: %v", id, err)
		}
		if birth.Before(lo) || birth.After(hi) {
			t.Fatalf("ID %s birth date %s outside 1950-2004", id, birth.Format(time.DateOnly))
		}
	}
	if seen < 1000 {
		t.Fatalf("only %d ID numbers in 5000 customers", seen)
	}
}

var (
	mobileFormats = []*regexp.Regexp{
		regexp.MustCompile(`^1\d{10}$`),
		regexp.MustCompile(`^1\d{2} \d{4} \d{4}$`),
		regexp.MustCompile(`^1\d{2}-\d{4}-\d{4}$`),
		regexp.MustCompile(`^\+86 1\d{2}-\d{4}-\d{4}$`),
		regexp.MustCompile(`^\+86 ?1\d{10}$`),
	}
	landlineFormats = []*regexp.Regexp{
		regexp.MustCompile(`^0\d{2,3}-\d{7,8}$`),
		regexp.MustCompile(`^0\d{2,3}-\d{3,4} \d{4}$`),
		regexp.MustCompile(`^\(0\d{2,3}\) \d{3,4} \d{4}$`),
		regexp.MustCompile(`^0\d{2,3} \d{3,4} \d{4}$`),
		regexp.MustCompile(`^\+86 [1-9]\d{1,2} \d{3,4} \d{4}$`),
	}
	// Mobile prefixes 13x, 15x, 17x, 18x, 19x as allocated (no 154, 171/2/4, 190/2/4).
	mobileDigits = regexp.MustCompile(`^1(3\d|5[0-35-9]|7[035-8]|8\d|9[135-9])\d{8}$`)
	areaCodes    = strings.Fields("010 020 021 022 023 025 027 028 029 0512 0532 0571 0574 0592 0731 0755")
)

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// classifyPhone returns "mobile" or "landline", or "" if s is not a valid
// Chinese number in one of the accepted formats.
func classifyPhone(s string) string {
	digits := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(s)
	intl := strings.HasPrefix(digits, "+86")
	digits = strings.TrimPrefix(digits, "+86")
	switch {
	case matchesAny(mobileFormats, s):
		if mobileDigits.MatchString(digits) {
			return "mobile"
		}
	case matchesAny(landlineFormats, s):
		if intl {
			digits = "0" + digits
		}
		for _, code := range areaCodes {
			rest, ok := strings.CutPrefix(digits, code)
			if !ok {
				continue
			}
			// Local numbers have 8 digits, 7 in Xiamen (0592).
			want := 8
			if code == "0592" {
				want = 7
			}
			if len(rest) == want && rest[0] >= '2' && rest[0] <= '8' && strings.Trim(rest, "0123456789") == "" {
				return "landline"
			}
		}
	}
	return ""
}

func TestPhones(t *testing.T) {
	kinds := map[string]int{}
	check := func(who string, phones []string) {
		if len(phones) < 1 || len(phones) > 2 {
			t.Fatalf("%s: %d phones", who, len(phones))
		}
		for _, p := range phones {
			k := classifyPhone(p)
			if k == "" {
				t.Fatalf("%s: invalid phone %q", who, p)
			}
			kinds[k]++
		}
	}
	for _, c := range sample(t, 11, 5000) {
		check(c.Name, c.Phones)
		for _, ct := range c.Contacts {
			check(c.Name+"/"+ct.Name, ct.Phones)
		}
	}
	if kinds["mobile"] < 1000 || kinds["landline"] < 1000 {
		t.Fatalf("phone mix: %v", kinds)
	}
	t.Logf("phone kinds: %v", kinds)
}

func TestPhoneClassifier(t *testing.T) {
	for s, want := range map[string]string{
		"13800138000":       "mobile",
		"138 0013 8000":     "mobile",
		"+86 138-0013-8000": "mobile",
		"+8613800138000":    "mobile",
		"010-6552 9988":     "landline",
		"021-5888 1234":     "landline",
		"0755-8666 1234":    "landline",
		"(0571) 8888 1234":  "landline",
		"+86 755 8666 1234": "landline",
		"14800138000":       "",
		"1380013800":        "",
		"0755-0666 1234":    "",
		"0999-8666 1234":    "",
	} {
		if got := classifyPhone(s); got != want {
			t.Errorf("classifyPhone(%q) = %q, want %q", s, got, want)
		}
	}
}

var emailRE = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$`)

// allStrings returns every string in c, labelled.
func allStrings(c Customer) map[string][]string {
	m := map[string][]string{
		"kind": {c.Kind}, "name": {c.Name}, "address": {c.Address}, "id": {c.IDNumber},
		"industry": {c.Industry}, "level": {c.Level}, "source": {c.Source}, "status": {c.Status},
		"notes": {c.Notes}, "phones": c.Phones, "emails": c.Emails, "tags": c.Tags,
	}
	for _, ct := range c.Contacts {
		m["contact"] = append(m["contact"], ct.Name, ct.Title, ct.Notes)
		m["phones"] = append(m["phones"], ct.Phones...)
		m["emails"] = append(m["emails"], ct.Emails...)
	}
	for _, it := range c.Interactions {
		m["interaction"] = append(m["interaction"], it.Kind, it.Summary)
	}
	return m
}

func TestText(t *testing.T) {
	var han, emails, upper int
	for _, c := range sample(t, 3, 5000) {
		for field, ss := range allStrings(c) {
			for _, s := range ss {
				if !utf8.ValidString(s) {
					t.Fatalf("%s: invalid UTF-8 %q", field, s)
				}
				if strings.TrimSpace(s) != s || strings.Contains(s, "  ") {
					t.Fatalf("%s: stray whitespace in %q", field, s)
				}
				if strings.Contains(s, "{who}") || strings.Contains(s, "%d") || strings.Contains(s, "%!") {
					t.Fatalf("%s: unexpanded template %q", field, s)
				}
				if strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
					han++
				}
			}
		}
		if c.Name == "" || c.Address == "" {
			t.Fatalf("empty name or address: %+v", c)
		}
		if c.Kind == "company" && len(strings.TrimSpace(c.Name)) < 4 {
			t.Fatalf("short company name %q", c.Name)
		}
		for _, e := range allStrings(c)["emails"] {
			if !emailRE.MatchString(e) {
				t.Fatalf("bad e-mail %q", e)
			}
			emails++
			if strings.ToLower(e) != e {
				upper++
			}
		}
		for _, ct := range c.Contacts {
			if ct.Name == "" || ct.Title == "" {
				t.Fatalf("contact without name or title: %+v", ct)
			}
		}
		for _, it := range c.Interactions {
			if it.Summary == "" {
				t.Fatalf("empty interaction summary")
			}
		}
	}
	if han < 10000 {
		t.Fatalf("only %d strings with Chinese characters", han)
	}
	if upper == 0 || upper > emails/4 {
		t.Fatalf("%d of %d e-mails have upper case", upper, emails)
	}
}

var (
	kindCodes        = []string{"company", "person"}
	industryCodes    = []string{"manufacturing", "software", "retail", "finance", "education", "healthcare", "logistics", "real_estate", "energy", "agriculture"}
	levelCodes       = []string{"a", "b", "c", "d"}
	sourceCodes      = []string{"referral", "website", "exhibition", "cold_call", "partner", "wechat", "advertising"}
	statusCodes      = []string{"lead", "prospect", "active", "dormant", "lost"}
	interactionCodes = []string{"call", "visit", "meeting", "email", "note"}
)

func TestCodesAndShape(t *testing.T) {
	seen := map[string]bool{}
	in := func(field, v string, codes []string) {
		if !slices.Contains(codes, v) {
			t.Fatalf("%s %q not in %v", field, v, codes)
		}
		seen[field+"="+v] = true
	}
	day := 24 * time.Hour
	var overdue, dueToday, future int
	for _, c := range sample(t, 5, 5000) {
		in("kind", c.Kind, kindCodes)
		in("industry", c.Industry, industryCodes)
		in("level", c.Level, levelCodes)
		in("source", c.Source, sourceCodes)
		in("status", c.Status, statusCodes)
		switch c.Kind {
		case "company":
			if n := len(c.Contacts); n < 1 || n > 3 {
				t.Fatalf("company with %d contacts", n)
			}
		case "person":
			if len(c.Contacts) != 0 {
				t.Fatalf("person with contacts")
			}
		}
		if len(c.Emails) > 2 || len(c.Tags) > 3 || len(c.Interactions) > 5 {
			t.Fatalf("too many emails/tags/interactions: %+v", c)
		}
		for _, ct := range c.Contacts {
			if len(ct.Emails) > 2 {
				t.Fatalf("contact with %d emails", len(ct.Emails))
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(c.Tags)))) != len(c.Tags) {
			t.Fatalf("duplicate tags %v", c.Tags)
		}
		for i, it := range c.Interactions {
			in("interaction", it.Kind, interactionCodes)
			if !it.At.Before(testNow) || it.At.Before(testNow.Add(-180*day)) {
				t.Fatalf("interaction at %v outside the 180 days before %v", it.At, testNow)
			}
			if i > 0 && it.At.Before(c.Interactions[i-1].At) {
				t.Fatalf("interactions not in chronological order")
			}
			f := it.NextFollowUp
			if f.IsZero() {
				continue
			}
			if f.Before(testNow.Add(-10*day)) || f.After(testNow.Add(30*day)) {
				t.Fatalf("follow-up %v outside [now-10d, now+30d]", f)
			}
			if f.Before(it.At) {
				t.Fatalf("follow-up %v before interaction %v", f, it.At)
			}
			fy, fm, fd := f.In(testNow.Location()).Date()
			ny, nm, nd := testNow.Date()
			switch {
			case fy == ny && fm == nm && fd == nd:
				dueToday++
			case f.Before(testNow):
				overdue++
			default:
				future++
			}
		}
	}
	for _, group := range []struct {
		field string
		codes []string
	}{{"kind", kindCodes}, {"industry", industryCodes}, {"level", levelCodes}, {"source", sourceCodes}, {"status", statusCodes}, {"interaction", interactionCodes}} {
		for _, code := range group.codes {
			if !seen[group.field+"="+code] {
				t.Errorf("%s %q never generated", group.field, code)
			}
		}
	}
	if overdue == 0 || dueToday == 0 || future == 0 {
		t.Fatalf("follow-ups: overdue %d, due today %d, future %d", overdue, dueToday, future)
	}
	t.Logf("follow-ups: overdue %d, due today %d, future %d", overdue, dueToday, future)
}

func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}

func TestProportions(t *testing.T) {
	cs := sample(t, 99, 5000)
	var companies, persons, zhPersons, zhCompanies, withID, interactions, noFollowUp, zhNotes, enNotes int
	levels := map[string]int{}
	for _, c := range cs {
		levels[c.Level]++
		if c.Kind == "company" {
			companies++
			if hasHan(c.Name) {
				zhCompanies++
			}
		} else {
			persons++
			if hasHan(c.Name) {
				zhPersons++
			}
			if c.IDNumber != "" {
				withID++
			}
		}
		if c.Notes != "" {
			if hasHan(c.Notes) {
				zhNotes++
			} else {
				enNotes++
			}
		}
		for _, it := range c.Interactions {
			interactions++
			if it.NextFollowUp.IsZero() {
				noFollowUp++
			}
		}
	}
	frac := func(a, b int) float64 { return float64(a) / float64(b) }
	checks := []struct {
		name   string
		got    float64
		lo, hi float64
	}{
		{"companies", frac(companies, len(cs)), 0.55, 0.65},
		{"Chinese person names", frac(zhPersons, persons), 0.68, 0.82},
		{"Chinese company names", frac(zhCompanies, companies), 0.75, 0.93},
		{"persons with ID", frac(withID, persons), 0.63, 0.77},
		{"interactions without follow-up", frac(noFollowUp, interactions), 0.45, 0.55},
		{"level b+c", frac(levels["b"]+levels["c"], len(cs)), 0.6, 0.85},
		{"level a", frac(levels["a"], len(cs)), 0.05, 0.2},
		{"level d", frac(levels["d"], len(cs)), 0.05, 0.25},
		{"Chinese notes", frac(zhNotes, zhNotes+enNotes), 0.55, 0.85},
	}
	for _, c := range checks {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s: %.3f not in [%.2f, %.2f]", c.name, c.got, c.lo, c.hi)
		} else {
			t.Logf("%s: %.3f", c.name, c.got)
		}
	}
}

func TestDuplicateNames(t *testing.T) {
	cs := sample(t, 2024, 20000)
	names := make(map[string]int, len(cs))
	for _, c := range cs {
		names[c.Name]++
	}
	dups := len(cs) - len(names)
	rate := float64(dups) / float64(len(cs))
	t.Logf("%d duplicate names in %d customers (%.2f%%)", dups, len(cs), 100*rate)
	if rate >= 0.05 {
		t.Fatalf("duplicate name rate %.2f%% >= 5%%", 100*rate)
	}
}

func BenchmarkCustomer(b *testing.B) {
	g := New(1, testNow)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Customer()
	}
}

// Every generated phone and email passes the validators the CRM uses, so the
// demo data imports without a rejected row.
func TestDataPassesValidators(t *testing.T) {
	g := New(7, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range g.Customers(5000) {
		for _, p := range c.Phones {
			if _, err := normalize.Phone(p); err != nil {
				t.Fatalf("phone %q: %v", p, err)
			}
		}
		for _, e := range c.Emails {
			if _, err := normalize.Email(e); err != nil {
				t.Fatalf("email %q: %v", e, err)
			}
		}
		if c.IDNumber != "" {
			if _, err := normalize.IDNumber(c.IDNumber); err != nil {
				t.Fatalf("id %q: %v", c.IDNumber, err)
			}
		}
		if _, err := normalize.Name(c.Name); err != nil {
			t.Fatalf("name %q: %v", c.Name, err)
		}
		for _, tag := range c.Tags {
			if _, err := normalize.Tag(tag); err != nil {
				t.Fatalf("tag %q: %v", tag, err)
			}
		}
	}
}
