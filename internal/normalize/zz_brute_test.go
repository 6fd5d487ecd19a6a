package normalize

import "testing"

func TestBruteIdempotence(t *testing.T) {
	marks := []string{"", "\u0301", "\u0345", "\u0307", "\u0308", "\u3099", "\u0327"}
	bad := 0
	for r := rune(0); r <= 0x10FFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		for _, m := range marks {
			for _, s := range []string{string(r) + m, "a" + string(r) + m, string(r) + m + "b"} {
				if g, err := Name(s); err == nil {
					if g2, err := Name(g); err != nil || g2 != g {
						bad++
						if bad < 10 {
							t.Errorf("Name %q -> %q -> %q %v", s, g, g2, err)
						}
					}
				}
				if g, err := Tag(s); err == nil {
					if g2, err := Tag(g); err != nil || g2 != g {
						bad++
						if bad < 20 {
							t.Errorf("Tag %q -> %q -> %q %v", s, g, g2, err)
						}
					}
				}
				if NameQuery(s) != nil && len(NameTerms(s)) < maxTerms && !MatchName(s, s) {
					bad++
					if bad < 30 {
						t.Errorf("self %q", s)
					}
				}
			}
			e := "a" + string(r) + m + "@b.com"
			if g, err := Email(e); err == nil {
				if g2, err := Email(g); err != nil || g2 != g {
					bad++
					if bad < 40 {
						t.Errorf("Email %q -> %q -> %q %v", e, g, g2, err)
					}
				}
			}
		}
	}
	t.Log("bad", bad)
}
