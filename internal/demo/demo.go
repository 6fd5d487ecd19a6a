// Package demo generates a deterministic, realistic-looking CRM dataset
// that mixes Chinese and English records: companies and persons with
// phone numbers, e-mail addresses, addresses, PRC resident ID numbers,
// contacts and sales interactions.
//
// The data is synthetic and meant for "custos demo" and benchmarks. The
// same seed and reference time always yield the same sequence of
// customers. The generator uses math/rand/v2 with a PCG source; it is not
// suitable for anything security related.
package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/normalize"
)

// Customer is one generated CRM customer record. Code fields (Kind,
// Industry, Level, Source, Status, Interaction.Kind) hold stable codes,
// not display labels.
type Customer struct {
	Kind         string // "company" or "person"
	Name         string
	Phones       []string
	Emails       []string
	Address      string
	IDNumber     string // persons only; 18-character PRC resident ID number or empty
	Industry     string // manufacturing, software, retail, finance, education, healthcare, logistics, real_estate, energy, agriculture
	Level        string // a, b, c, d
	Source       string // referral, website, exhibition, cold_call, partner, wechat, advertising
	Status       string // lead, prospect, active, dormant, lost
	Tags         []string
	Notes        string
	Contacts     []Contact     // companies: 1-3; persons: none
	Interactions []Interaction // 0-5, oldest first
}

// Contact is a person at a company customer.
type Contact struct {
	Name, Title    string
	Phones, Emails []string
	Notes          string
}

// Interaction is a logged sales activity.
type Interaction struct {
	Kind         string    // call, visit, meeting, email, note
	At           time.Time // within the 180 days before the generator's now
	Summary      string
	NextFollowUp time.Time // zero, or between now-10d and now+30d
}

// Generator yields customers deterministically for a seed. It is not safe
// for concurrent use.
type Generator struct {
	r   *rand.Rand
	now time.Time
}

// New returns a generator for seed. Interaction times are placed relative
// to now (in now's location).
func New(seed uint64, now time.Time) *Generator {
	return &Generator{
		r:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now: now,
	}
}

// Customers returns n customers.
func (g *Generator) Customers(n int) []Customer {
	if n <= 0 {
		return nil
	}
	out := make([]Customer, n)
	for i := range out {
		out[i] = g.Customer()
	}
	return out
}

// person is a generated individual with the romanisation needed to derive
// e-mail addresses and forms of address.
type person struct {
	name     string // as displayed
	hanzi    bool   // name written in Chinese characters
	zhSur    string // Chinese surname if the person is Chinese
	given    string // lowercase ascii given/first name
	family   string // lowercase ascii surname
	initials string // lowercase ascii initials, surname first for Chinese names
	first    string // English first name for English names
	female   bool
}

// party is somebody the salesperson deals with.
type party struct {
	p     person
	title string
}

type company struct {
	name    string
	brand   string // lowercase ascii brand, for mailbox names
	domain  string
	english bool
}

// Customer returns the next customer.
func (g *Generator) Customer() Customer {
	var c Customer
	loc := g.location()
	c.Industry = g.weighted(industries)
	c.Level = g.weighted(levels)
	c.Source = g.weighted(sources)
	c.Status = g.weighted(statuses)

	var zh bool
	var parties []party
	if g.chance(0.6) {
		c.Kind = "company"
		co := g.company(loc, c.Industry)
		zh = !co.english
		c.Name = co.name
		c.Phones = g.phones(loc, 0.8, 0.4, 0.5)
		c.Emails = g.companyEmails(co)
		c.Address = g.address(loc, co.english, true, c.Industry)
		n := g.pickCount(0, 50, 35, 15)
		c.Contacts = make([]Contact, 0, n)
		for range n {
			ct, pt := g.contact(loc, co)
			c.Contacts = append(c.Contacts, ct)
			parties = append(parties, pt)
		}
	} else {
		c.Kind = "person"
		var p person
		switch {
		case g.chance(0.75):
			p = g.chinesePerson()
		default:
			p = g.englishPerson(g.chance(0.3))
		}
		zh = p.hanzi
		c.Name = p.name
		c.Phones = g.phones(loc, 0.08, 0.35, 0.3)
		n := g.pickCount(25, 55, 20)
		for range n {
			c.Emails = appendUnique(c.Emails, g.personalEmail(p))
		}
		c.Address = g.address(loc, !p.hanzi, false, c.Industry)
		// Chinese citizens (including those using an English first name)
		// mostly have their resident ID on file; foreigners do not.
		if p.zhSur != "" && g.chance(0.85) {
			c.IDNumber = g.idNumber(loc, p.female)
		}
		parties = append(parties, party{p: p})
	}

	lang := zh
	if g.chance(0.12) {
		lang = !lang
	}
	c.Tags = g.tags(loc)
	c.Notes = g.notes(lang)
	c.Interactions = g.interactions(lang, parties)
	return c
}

// ---- random helpers ----

func (g *Generator) intn(n int) int         { return g.r.IntN(n) }
func (g *Generator) chance(p float64) bool  { return g.r.Float64() < p }
func pick[T any](g *Generator, s []T) T     { return s[g.r.IntN(len(s))] }
func (g *Generator) digits(n int) string    { return g.digitsInto(make([]byte, 0, n), n) }
func (g *Generator) skewed(n int) int       { u := g.r.Float64(); return int(float64(n) * u * u) }
func (g *Generator) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

func (g *Generator) digitsInto(b []byte, n int) string {
	for range n {
		b = append(b, byte('0'+g.r.IntN(10)))
	}
	return string(b)
}

func (g *Generator) weighted(ws []weighted) string {
	n := g.r.IntN(total(ws))
	for _, w := range ws {
		if n < w.w {
			return w.code
		}
		n -= w.w
	}
	return ws[len(ws)-1].code
}

// pickCount returns i with probability proportional to weights[i].
func (g *Generator) pickCount(weights ...int) int {
	t := 0
	for _, w := range weights {
		t += w
	}
	n := g.r.IntN(t)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func (g *Generator) location() location {
	n := g.r.IntN(locationTotal)
	for _, l := range locations {
		if n < l.weight {
			return l
		}
		n -= l.weight
	}
	return locations[0]
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// ---- names ----

func (g *Generator) chineseSurname() pair {
	if g.chance(0.02) {
		return pick(g, compoundSurnames)
	}
	// Biased toward common surnames, but flatter than reality so that
	// names stay mostly distinct.
	u := g.r.Float64()
	return surnames[int(float64(len(surnames))*u*math.Sqrt(u))]
}

func (g *Generator) chinesePerson() person {
	female := g.chance(0.5)
	sur := g.chineseSurname()
	tbl := maleGiven
	if female {
		tbl = femaleGiven
	}
	a := pick(g, tbl)
	givenZH, givenPY, ini := a.zh, a.py, a.py[:1]
	if g.chance(0.82) {
		b := a
		if !g.chance(0.04) {
			for b == a {
				b = pick(g, tbl)
			}
		}
		givenZH += b.zh
		givenPY += b.py
		ini += b.py[:1]
	}
	return person{
		name:     sur.zh + givenZH,
		hanzi:    true,
		zhSur:    sur.zh,
		given:    givenPY,
		family:   sur.py,
		initials: sur.py[:1] + ini,
		female:   female,
	}
}

// englishPerson returns an English name; with pinyinSurname the person is
// a Chinese with an English first name ("Kevin Zhang").
func (g *Generator) englishPerson(pinyinSurname bool) person {
	female := g.chance(0.5)
	first := pick(g, englishMale)
	if female {
		first = pick(g, englishFemale)
	}
	p := person{first: first, female: female, given: strings.ToLower(first)}
	if pinyinSurname {
		sur := g.chineseSurname()
		p.zhSur = sur.zh
		p.family = sur.py
		p.name = first + " " + capitalize(sur.py)
	} else {
		last := pick(g, englishLast)
		p.family = strings.ToLower(last)
		if g.chance(0.12) {
			p.name = first + " " + string(rune('A'+g.intn(26))) + ". " + last
		} else {
			p.name = first + " " + last
		}
	}
	p.initials = p.given[:1] + p.family[:1]
	return p
}

func (g *Generator) company(loc location, industry string) company {
	if g.chance(0.15) {
		return g.englishCompany(industry)
	}
	n := 2
	if g.chance(0.2) {
		n = 3
	}
	var idx [3]int
	var zhB, pyB strings.Builder
	for i := 0; i < n; {
		j := g.intn(len(brandChars))
		if slices.Contains(idx[:i], j) {
			continue
		}
		idx[i] = j
		zhB.WriteString(brandChars[j].zh)
		pyB.WriteString(brandChars[j].py)
		i++
	}
	brand, py := zhB.String(), pyB.String()
	word := pick(g, industryWordsZH[industry])
	suffix := g.weighted(companySuffixZH)

	var name string
	if suffix == "branch" {
		hq := g.location()
		for hq.city == loc.city {
			hq = g.location()
		}
		name = hq.short + brand + word + "有限公司" + loc.short + "分公司"
	} else {
		switch r := g.r.Float64(); {
		case r < 0.55:
			name = loc.short + brand + word + suffix
		case r < 0.80:
			name = loc.city + brand + word + suffix
		case r < 0.92:
			name = brand + word + "（" + loc.short + "）" + suffix
		default:
			name = brand + word + suffix
		}
	}

	dom := py + pick(g, []string{"", "", "", "", "tech", "-tech", "group", "-group", "china", "cn"})
	switch r := g.r.Float64(); {
	case r < 0.55:
		dom += ".com"
	case r < 0.80:
		dom += ".com.cn"
	case r < 0.92:
		dom += ".cn"
	default:
		dom += ".net"
	}
	return company{name: name, brand: py, domain: dom}
}

func (g *Generator) englishCompany(industry string) company {
	var parts []string
	switch r := g.r.Float64(); {
	case r < 0.75: // Blue Harbor Logistics Co.
		w1, w2 := pick(g, brandWordEN), pick(g, brandWord2EN)
		for w2 == w1 {
			w2 = pick(g, brandWord2EN)
		}
		parts = []string{w1, w2}
	case r < 0.8: // Northwind Trading Ltd.
		parts = []string{pick(g, brandWordEN)}
	case r < 0.9: // Carter Logistics Ltd.
		parts = []string{pick(g, englishLast)}
	default: // Carter & Hughes Capital LLC
		a, b := pick(g, englishLast), pick(g, englishLast)
		for b == a {
			b = pick(g, englishLast)
		}
		parts = []string{a, "&", b}
	}
	brand := strings.ToLower(strings.Join(slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return s == "&" }), ""))
	ind := pick(g, industryWordsEN[industry])
	parts = append(parts, ind)
	suffix := g.weighted(companySuffixEN)
	if suffix == "Co., Ltd." && g.chance(0.4) {
		parts = append(parts, pick(g, []string{"(China)", "(Shanghai)", "(Shenzhen)", "(Suzhou)"}))
	}
	parts = append(parts, suffix)

	dom := brand
	if g.chance(0.4) {
		dom += strings.ToLower(strings.Fields(ind)[0])
	}
	switch r := g.r.Float64(); {
	case r < 0.6:
		dom += ".com"
	case r < 0.7:
		dom += ".com.cn"
	case r < 0.78:
		dom += ".com.hk"
	case r < 0.85 && industry == "software":
		dom += ".io"
	case r < 0.9:
		dom += ".co"
	default:
		dom += ".net"
	}
	return company{name: strings.Join(parts, " "), brand: brand, domain: dom, english: true}
}

func (g *Generator) contact(loc location, co company) (Contact, party) {
	var p person
	r := g.r.Float64()
	switch {
	case !co.english && r < 0.88, co.english && r >= 0.75:
		p = g.chinesePerson()
	case !co.english:
		p = g.englishPerson(true)
	default:
		p = g.englishPerson(r >= 0.5)
	}
	zhTitle := p.hanzi == g.chance(0.85)
	var title string
	if zhTitle {
		title = pick(g, titlesZH)
	} else {
		title = pick(g, titlesEN)
	}
	ct := Contact{Name: p.name, Title: title}
	ct.Phones = g.phones(loc, 0.15, 0.35, 0.6)
	switch g.pickCount(15, 60, 25) {
	case 1:
		ct.Emails = []string{g.workEmail(p, co.domain)}
	case 2:
		ct.Emails = appendUnique([]string{g.workEmail(p, co.domain)}, g.personalEmail(p))
	}
	if g.chance(0.4) {
		if p.hanzi {
			ct.Notes = pick(g, contactNotesZH)
		} else {
			ct.Notes = pick(g, contactNotesEN)
		}
	}
	return ct, party{p: p, title: title}
}

// ---- phones ----

// phones returns 1-2 numbers. The first is a landline with probability
// firstLandline; a second one is added with probability second and is a
// landline with probability secondLandline.
func (g *Generator) phones(loc location, firstLandline, second, secondLandline float64) []string {
	one := func(landline bool) string {
		if landline {
			return g.landline(loc)
		}
		return g.mobile()
	}
	out := []string{one(g.chance(firstLandline))}
	if g.chance(second) {
		out = appendUnique(out, one(g.chance(secondLandline)))
	}
	return out
}

func (g *Generator) mobile() string {
	b := make([]byte, 0, 11)
	b = append(b, pick(g, mobilePrefixes)...)
	n := g.digitsInto(b, 8)
	switch g.pickCount(50, 20, 10, 10, 5, 5) {
	case 0:
		return n
	case 1:
		return n[:3] + " " + n[3:7] + " " + n[7:]
	case 2:
		return n[:3] + "-" + n[3:7] + "-" + n[7:]
	case 3:
		return "+86 " + n[:3] + "-" + n[3:7] + "-" + n[7:]
	case 4:
		return "+86 " + n
	default:
		return "+86" + n
	}
}

// landline returns a number that the CRM's validator (libphonenumber's
// metadata of assigned ranges) accepts, drawing again when it would not.
func (g *Generator) landline(loc location) string {
	for range 20 {
		if n := g.landlineOnce(loc); validPhone(n) {
			return n
		}
	}
	return g.mobile()
}

func (g *Generator) landlineOnce(loc location) string {
	code := loc.areaCode
	rest := 7 // local numbers have 8 digits in most cities
	if code == "0592" {
		rest = 6 // Xiamen's have 7
	}
	local := g.digitsInto([]byte{byte('2' + g.intn(7))}, rest)
	h := len(local) - 4
	switch g.pickCount(35, 30, 10, 10, 15) {
	case 0:
		return code + "-" + local
	case 1:
		return code + "-" + local[:h] + " " + local[h:]
	case 2:
		return "(" + code + ") " + local[:h] + " " + local[h:]
	case 3:
		return code + " " + local[:h] + " " + local[h:]
	default:
		return "+86 " + code[1:] + " " + local[:h] + " " + local[h:]
	}
}

// ---- e-mail ----

// styleEmail lowercases most addresses but capitalises or upper-cases a few,
// as people type them into a CRM.
func (g *Generator) styleEmail(local, domain string) string {
	switch r := g.r.Float64(); {
	case r < 0.07:
		b := []byte(local)
		for i, c := range b {
			if (i == 0 || b[i-1] == '.' || b[i-1] == '_') && c >= 'a' && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b) + "@" + domain
	case r < 0.10:
		return strings.ToUpper(local + "@" + domain)
	default:
		return local + "@" + domain
	}
}

func (g *Generator) year() string {
	y := g.between(1960, 2004)
	if g.chance(0.5) {
		return strconv.Itoa(y)
	}
	return strconv.Itoa(y)[2:]
}

func (g *Generator) personalEmail(p person) string {
	var local, domain string
	if p.hanzi {
		switch g.pickCount(20, 20, 10, 20, 10, 20) {
		case 0:
			local = p.family + "." + p.given
		case 1:
			local = p.family + p.given
		case 2:
			local = p.given + "." + p.family
		case 3:
			local = p.family + p.given + g.year()
		case 4:
			local = p.initials + g.digits(g.between(3, 4))
		default:
			// QQ mailbox: a 6-10 digit QQ number.
			return g.digitsInto([]byte{byte('1' + g.intn(9))}, g.between(5, 9)) + "@qq.com"
		}
		domain = g.weighted(personalDomainsZH)
	} else {
		switch g.pickCount(30, 20, 15, 15, 10, 10) {
		case 0:
			local = p.given + "." + p.family
		case 1:
			local = p.given + p.family
		case 2:
			local = p.given[:1] + p.family
		case 3:
			local = p.given + "." + p.family + g.year()
		case 4:
			local = p.given + "_" + p.family
		default:
			local = p.given + p.family[:1] + g.digits(2)
		}
		if p.zhSur != "" && g.chance(0.5) {
			domain = g.weighted(personalDomainsZH)
		} else {
			domain = g.weighted(personalDomainsEN)
		}
	}
	return g.styleEmail(local, domain)
}

func (g *Generator) workEmail(p person, domain string) string {
	var local string
	if p.hanzi {
		switch g.pickCount(35, 20, 25, 20) {
		case 0:
			local = p.family + p.given
		case 1:
			local = p.given + "." + p.family
		case 2:
			local = p.family + "." + p.given
		default:
			local = p.initials[1:] + p.family
		}
	} else {
		switch g.pickCount(45, 20, 20, 15) {
		case 0:
			local = p.given + "." + p.family
		case 1:
			local = p.given
		case 2:
			local = p.given[:1] + p.family
		default:
			local = p.given + "." + p.family[:1]
		}
	}
	return g.styleEmail(local, domain)
}

func (g *Generator) companyEmails(co company) []string {
	var out []string
	for range g.pickCount(30, 50, 20) {
		if g.chance(0.1) {
			// Small companies often use a free mailbox.
			out = appendUnique(out, g.styleEmail(co.brand+g.digits(g.between(2, 4)), pick(g, []string{"163.com", "126.com", "qq.com", "gmail.com"})))
			continue
		}
		out = appendUnique(out, g.styleEmail(pick(g, roleMailboxes), co.domain))
	}
	return out
}

// ---- addresses ----

var residences = strings.Fields(`阳光花园 翠苑 锦绣华庭 金色家园 万科城 世纪新城 和平里 幸福小区 绿城桂花园 碧水湾 东方明珠苑 星河湾`)

func (g *Generator) address(loc location, english, company bool, industry string) string {
	if english && g.chance(0.55) || !english && g.chance(0.03) {
		if english && g.chance(0.4) {
			return g.overseasAddress()
		}
		return g.chinaAddressEN(loc)
	}
	sep := ""
	if g.chance(0.5) {
		sep = " "
	}
	var b strings.Builder
	if loc.province != "" && g.chance(0.7) {
		b.WriteString(loc.province)
	}
	b.WriteString(loc.city)
	b.WriteString(pick(g, loc.districts).name)
	b.WriteString(pick(g, loc.streets))
	num := func(n int) { b.WriteString(sep + strconv.Itoa(n) + sep) }
	num(1 + g.skewed(1200))
	b.WriteString("号")

	room := func() int { return g.between(1, 35)*100 + g.between(1, 20) }
	office := func() {
		b.WriteString(sep + pick(g, buildingsZH))
		if g.chance(0.5) {
			b.WriteString(sep + string(rune('A'+g.intn(4))) + sep + "座")
		}
		num(room())
		b.WriteString("室")
	}
	industrial := industry == "manufacturing" || industry == "logistics" || industry == "agriculture" || industry == "energy"
	switch r := g.r.Float64(); {
	case !company && r < 0.6:
		b.WriteString(sep + pick(g, residences))
		num(g.between(1, 30))
		b.WriteString("栋")
		if g.chance(0.5) {
			num(g.between(1, 4))
			b.WriteString("单元")
		}
		num(g.between(1, 30)*100 + g.between(1, 6))
		b.WriteString("室")
	case company && industrial && r < 0.6:
		b.WriteString(sep + loc.short + pick(g, parksZH))
		num(g.between(1, 20))
		b.WriteString(pick(g, []string{"栋", "号楼", "号厂房"}))
	case r < 0.8:
		office()
	case r < 0.9:
		b.WriteString(sep + pick(g, buildingsZH))
		num(g.between(1, 40))
		b.WriteString("楼")
	}
	return b.String()
}

func (g *Generator) chinaAddressEN(loc location) string {
	c := pick(g, citiesEN)
	for _, ce := range citiesEN {
		if ce.zh == loc.short {
			c = ce
		}
	}
	var unit string
	switch g.intn(4) {
	case 0:
		unit = fmt.Sprintf("Room %d, Tower %c, %s", g.between(1, 35)*100+g.between(1, 20), 'A'+g.intn(4), pick(g, buildingsEN))
	case 1:
		unit = fmt.Sprintf("Suite %d, %s", g.between(1, 35)*100+g.between(1, 20), pick(g, buildingsEN))
	case 2:
		unit = fmt.Sprintf("Unit %d%c, Building %d", g.between(1, 20), 'A'+g.intn(6), g.between(1, 12))
	default:
		unit = fmt.Sprintf("%d/F, %s", g.between(2, 40), pick(g, buildingsEN))
	}
	return fmt.Sprintf("%s, %d %s, %s, %s %s%s, China", unit, 1+g.skewed(1500), pick(g, c.streets),
		pick(g, c.districts), c.name, c.post, g.digits(3))
}

func (g *Generator) overseasAddress() string {
	switch g.intn(5) {
	case 0:
		return fmt.Sprintf("%d/F, %s, %d %s, %s, Hong Kong", g.between(2, 45),
			pick(g, []string{"Lippo Centre", "Far East Finance Centre", "Harbour Centre", "Times Square", "Cosco Tower"}),
			g.between(1, 300), pick(g, []string{"Queensway", "Des Voeux Road Central", "Harbour Road", "Nathan Road", "Hennessy Road"}),
			pick(g, []string{"Admiralty", "Central", "Wan Chai", "Tsim Sha Tsui", "Causeway Bay"}))
	case 1:
		return fmt.Sprintf("%d %s, #%02d-%02d, Singapore %s", g.between(1, 200),
			pick(g, []string{"Raffles Place", "Robinson Road", "Cecil Street", "Shenton Way", "Anson Road"}),
			g.between(2, 40), g.between(1, 12), "0"+g.digits(5))
	case 2:
		cs := pick(g, [][2]string{{"San Francisco", "CA 941"}, {"San Jose", "CA 951"}, {"Seattle", "WA 981"}, {"New York", "NY 100"}, {"Austin", "TX 787"}, {"Chicago", "IL 606"}})
		return fmt.Sprintf("%d %s, Suite %d, %s, %s%s, USA", g.between(10, 2999),
			pick(g, []string{"Market Street", "Main Street", "Mission Street", "Broadway", "Park Avenue", "Pine Street"}),
			g.between(1, 30)*100, cs[0], cs[1], g.digits(2))
	case 3:
		return fmt.Sprintf("%d %s, London %s, United Kingdom", g.between(1, 180),
			pick(g, []string{"Old Broad Street", "King William Street", "Fenchurch Street", "Moorgate", "Cannon Street"}),
			pick(g, []string{"EC2N 1HQ", "EC4N 7AE", "EC3M 3BY", "EC2R 6AY", "EC4M 6XH"}))
	default:
		sc := pick(g, [][2]string{{"Friedrichstraße", "10117 Berlin"}, {"Königsallee", "40212 Düsseldorf"}, {"Maximilianstraße", "80539 München"}, {"Zeil", "60313 Frankfurt am Main"}})
		return fmt.Sprintf("%s %d, %s, Germany", sc[0], g.between(1, 150), sc[1])
	}
}

// ---- ID numbers ----

var (
	birthStart = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	birthDays  = int(time.Date(2004, 12, 31, 0, 0, 0, 0, time.UTC).Sub(birthStart).Hours()/24) + 1
)

func (g *Generator) idNumber(loc location, female bool) string {
	var area string
	switch r := g.r.Float64(); {
	case r < 0.6:
		area = pick(g, loc.districts).code
	case r < 0.85:
		area = pick(g, pick(g, locations).districts).code
	default:
		area = pick(g, extraAreaCodes)
	}
	birth := birthStart.AddDate(0, 0, g.intn(birthDays))
	seq := g.intn(100)*10 + 2*g.intn(5)
	if !female {
		seq++
	}
	b := make([]byte, 0, 18)
	b = append(b, area...)
	b = birth.AppendFormat(b, "20060102")
	b = append(b, byte('0'+seq/100), byte('0'+seq/10%10), byte('0'+seq%10))
	b = append(b, idChecksum(b))
	return string(b)
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idChecksum returns the ISO 7064 MOD 11-2 check character for the first
// 17 digits of a resident ID number (GB 11643-1999).
func idChecksum(d []byte) byte {
	sum := 0
	for i, w := range idWeights {
		sum += int(d[i]-'0') * w
	}
	return "10X98765432"[sum%11]
}

// ---- tags, notes, interactions ----

func (g *Generator) tags(loc location) []string {
	n := g.pickCount(30, 35, 22, 13)
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for len(out) < n {
		var t string
		switch r := g.r.Float64(); {
		case r < 0.25:
			t = loc.region
		case r < 0.7:
			t = pick(g, tagsZH)
		default:
			t = pick(g, tagsEN)
		}
		out = appendUnique(out, t)
	}
	return out
}

// fill substitutes a plausible number into a template containing %d.
func (g *Generator) fill(s string) string {
	if !strings.Contains(s, "%d") {
		return s
	}
	var n int
	switch {
	case strings.Contains(s, "月份"):
		n = g.between(1, 12)
	case strings.Contains(s, "天"):
		n = 30 * g.between(1, 3)
	case strings.Contains(s, "months"):
		n = g.between(2, 11)
	default:
		n = g.between(3, 99)
	}
	return fmt.Sprintf(s, n)
}

func (g *Generator) notes(zh bool) string {
	n := g.pickCount(25, 45, 30)
	if n == 0 {
		return ""
	}
	tbl, sep := notesEN, " "
	if zh {
		tbl, sep = notesZH, ""
	}
	first := g.intn(len(tbl))
	s := g.fill(tbl[first])
	if n == 2 {
		second := g.intn(len(tbl) - 1)
		if second >= first {
			second++
		}
		s += sep + g.fill(tbl[second])
	}
	return s
}

func isBoss(title string) bool {
	switch title {
	case "董事长", "CEO", "CFO", "CTO", "COO", "General Manager":
		return true
	}
	return strings.Contains(title, "总") || strings.Contains(title, "Director")
}

// who returns how a salesperson refers to pt in a note.
func (g *Generator) who(pt party, zh bool) string {
	p := pt.p
	if zh {
		if p.zhSur == "" {
			return p.first
		}
		switch {
		case pt.title == "":
			if p.hanzi && g.chance(0.4) {
				return p.name
			}
			if p.female {
				return p.zhSur + "女士"
			}
			return p.zhSur + "先生"
		case isBoss(pt.title):
			return p.zhSur + "总"
		case strings.Contains(pt.title, "IT") || strings.Contains(pt.title, "技术") || strings.Contains(pt.title, "Engineering"):
			return p.zhSur + "工"
		case p.hanzi && g.chance(0.5):
			return p.name
		default:
			return p.zhSur + "经理"
		}
	}
	if !p.hanzi {
		return p.first
	}
	if g.chance(0.5) {
		return p.name
	}
	if p.female {
		return "Ms. " + capitalize(p.family)
	}
	return "Mr. " + capitalize(p.family)
}

func (g *Generator) interactions(zh bool, parties []party) []Interaction {
	n := g.pickCount(10, 20, 25, 20, 15, 10)
	if n == 0 {
		return nil
	}
	out := make([]Interaction, n)
	for i := range out {
		it := &out[i]
		it.Kind = g.weighted(interactionKinds)
		it.At = g.pastTime()
		lang := zh
		if g.chance(0.1) {
			lang = !lang
		}
		tbl := summariesEN
		if lang {
			tbl = summariesZH
		}
		s := g.fill(pick(g, tbl[it.Kind]))
		if strings.Contains(s, "{who}") {
			w := "客户"
			if !lang {
				w = "the customer"
			}
			if len(parties) > 0 {
				w = g.who(pick(g, parties), lang)
			}
			if !lang && strings.HasPrefix(s, "{who}") {
				w = capitalize(w)
			}
			s = strings.Replace(s, "{who}", w, 1)
		}
		it.Summary = s
		if g.chance(0.5) {
			it.NextFollowUp = g.followUp(it.At)
		}
	}
	slices.SortStableFunc(out, func(a, b Interaction) int { return a.At.Compare(b.At) })
	return out
}

// pastTime returns a working-hours time within the 180 days before now.
func (g *Generator) pastTime() time.Time {
	loc := g.now.Location()
	oldest := g.now.Add(-180 * 24 * time.Hour)
	for {
		day := g.now.AddDate(0, 0, -g.intn(180))
		t := time.Date(day.Year(), day.Month(), day.Day(), g.between(8, 19), g.intn(60), 0, 0, loc)
		if t.Before(g.now) && t.After(oldest) {
			return t
		}
	}
}

// followUp returns a working-hours time on a day from 9 days ago to 29 days
// ahead, so that it lies between now-10d and now+30d (some are overdue and
// some are due today), and not before the interaction at.
func (g *Generator) followUp(at time.Time) time.Time {
	loc := g.now.Location()
	y, m, d := g.now.Date()
	today := time.Date(y, m, d, 12, 0, 0, 0, loc)
	y, m, d = at.In(loc).Date()
	atDay := time.Date(y, m, d, 12, 0, 0, 0, loc)
	lo := -int(today.Sub(atDay).Round(24*time.Hour) / (24 * time.Hour))
	lo = max(lo, -9)
	day := today.AddDate(0, 0, g.between(lo, 29))
	t := time.Date(day.Year(), day.Month(), day.Day(), g.between(9, 17), 30*g.intn(2), 0, 0, loc)
	if t.Before(at) {
		// Same day as the interaction but earlier: move to the next day.
		t = t.AddDate(0, 0, 1)
	}
	return t
}

func validPhone(s string) bool {
	_, err := normalize.Phone(s)
	return err == nil
}
