package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ErrNetworkPolicy marks a refusal because of where or when a user connects.
var ErrNetworkPolicy = errors.New("access not allowed")

// LoginPolicy is a role's restriction on where and when its users may work.
type LoginPolicy struct {
	Allow    []netip.Prefix // empty: any address
	hours    bool
	from, to int // minutes after midnight; from > to spans midnight
	loc      *time.Location
}

// ParseLoginPolicy parses a space- or comma-separated CIDR list (single
// addresses allowed) and a login-hours window "HH:MM-HH:MM" with an optional
// IANA zone ("08:00-20:00 Asia/Shanghai"; default the server's zone).
func ParseLoginPolicy(allowlist, hours string) (LoginPolicy, error) {
	var p LoginPolicy
	for _, f := range strings.FieldsFunc(allowlist, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' }) {
		pref, err := netip.ParsePrefix(f)
		if err != nil {
			addr, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return LoginPolicy{}, fmt.Errorf("ip allowlist: %q is not an address or CIDR range", f)
			}
			pref = netip.PrefixFrom(addr, addr.BitLen())
		}
		p.Allow = append(p.Allow, pref.Masked())
	}
	hours = strings.TrimSpace(hours)
	if hours == "" {
		return p, nil
	}
	window, zone, _ := strings.Cut(hours, " ")
	from, to, ok := strings.Cut(window, "-")
	fm, err1 := clockMinutes(from)
	tm, err2 := clockMinutes(to)
	if !ok || err1 != nil || err2 != nil || fm == tm {
		return LoginPolicy{}, fmt.Errorf("login hours must look like 08:00-20:00 (optionally followed by a time zone)")
	}
	p.hours, p.from, p.to, p.loc = true, fm, tm, time.Local
	if zone = strings.TrimSpace(zone); zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return LoginPolicy{}, fmt.Errorf("login hours: unknown time zone %q", zone)
		}
		p.loc = loc
	}
	return p, nil
}

func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Check refuses an address outside the allowlist or a time outside the
// login hours.
func (p LoginPolicy) Check(ip string, now time.Time) error {
	if len(p.Allow) > 0 {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("%w: unknown source address", ErrNetworkPolicy)
		}
		addr = addr.Unmap()
		allowed := false
		for _, pref := range p.Allow {
			if pref.Contains(addr) {
				allowed = true
				break
			}
		}
		if !allowed {
			return fmt.Errorf("%w: your role may not connect from this address", ErrNetworkPolicy)
		}
	}
	if p.hours {
		t := now.In(p.loc)
		m := t.Hour()*60 + t.Minute()
		inside := m >= p.from && m < p.to
		if p.from > p.to { // spans midnight
			inside = m >= p.from || m < p.to
		}
		if !inside {
			return fmt.Errorf("%w: outside the login hours of your role", ErrNetworkPolicy)
		}
	}
	return nil
}
