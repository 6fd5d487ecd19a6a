package access

import (
	"errors"
	"testing"
	"time"
)

func TestLoginPolicy(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, shanghai) }
	cases := []struct {
		name, allow, hours, ip string
		now                    time.Time
		ok                     bool
	}{
		{"no policy", "", "", "203.0.113.9", at(3, 0), true},
		{"inside CIDR", "10.0.0.0/8 192.168.1.0/24", "", "10.20.30.40", at(12, 0), true},
		{"outside CIDR", "10.0.0.0/8, 192.168.1.0/24", "", "192.168.2.1", at(12, 0), false},
		{"single address", "203.0.113.9", "", "203.0.113.9", at(12, 0), true},
		{"IPv4-mapped IPv6", "10.0.0.0/8", "", "::ffff:10.1.2.3", at(12, 0), true},
		{"IPv6 range", "2001:db8::/32", "", "2001:db8::1", at(12, 0), true},
		{"garbage address", "10.0.0.0/8", "", "not-an-ip", at(12, 0), false},
		{"within hours", "", "08:00-20:00 Asia/Shanghai", "1.2.3.4", at(8, 0), true},
		{"before hours", "", "08:00-20:00 Asia/Shanghai", "1.2.3.4", at(7, 59), false},
		{"at closing", "", "08:00-20:00 Asia/Shanghai", "1.2.3.4", at(20, 0), false},
		{"night shift inside", "", "22:00-06:00 Asia/Shanghai", "1.2.3.4", at(2, 0), true},
		{"night shift outside", "", "22:00-06:00 Asia/Shanghai", "1.2.3.4", at(12, 0), false},
		{"zone converts", "", "08:00-20:00 Asia/Shanghai", "1.2.3.4", time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC), true}, // 09:00 in Shanghai
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseLoginPolicy(tc.allow, tc.hours)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(tc.ip, tc.now)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrNetworkPolicy)) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	for _, bad := range [][2]string{{"10.0.0.0/33", ""}, {"example.com", ""}, {"", "8-20"}, {"", "08:00-08:00"}, {"", "08:00-20:00 Mars/Olympus"}, {"", "25:00-26:00"}} {
		if _, err := ParseLoginPolicy(bad[0], bad[1]); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
