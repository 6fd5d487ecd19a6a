package settings

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		key, value, want, err string
	}{
		{StrictSeparation, "ON", "on", ""},
		{StrictSeparation, "false", "off", ""},
		{StrictSeparation, "maybe", "", "on or off"},
		{TimeZone, "Europe/Berlin", "Europe/Berlin", ""},
		{TimeZone, "Mars/Olympus", "", "IANA"},
		{TimeZone, "Local", "", "IANA"},
		{PoolReturnDays, "30", "30", ""},
		{PoolReturnDays, "-1", "", "0 to 3650"},
		{PoolReturnDays + ".A", "90", "90", ""},
		{PoolReturnDays + ".a b", "90", "", "unknown setting"},
		{PoolReturnDays + ".", "90", "", "unknown setting"},
		{"colour", "red", "", "unknown setting"},
		{PoolWarnDays, "", "", ""}, // reset to default
		{BackupDestinations, " file:///b  s3://bk?region=x ", "file:///b s3://bk?region=x", ""},
		{BackupDestinations, "s3://AKIA:s3cr3t@bk", "", "must not carry credentials"},
		{BackupDestinations, "s3://bk?secret_access_key=x", "", "must not carry credentials"},
		{BackupDestinations, "http://bk", "", "file:///absolute/path or s3://bucket"},
		{UIWatermark, "off", "off", ""},
	} {
		got, err := Validate(tc.key, tc.value)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Validate(%q, %q) = %q, %v; want error with %q", tc.key, tc.value, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Validate(%q, %q) = %q, %v; want %q", tc.key, tc.value, got, err, tc.want)
		}
	}
}

func TestValuesPrecedence(t *testing.T) {
	env := map[string]string{"CUSTOS_POOL_RETURN_DAYS": "45", "CUSTOS_STRICT_SEPARATION": "bogus"}
	v := New(map[string]string{PoolReturnDays: "30", StrictSeparation: "on", "pool.return_days.a": "90"},
		func(k string) (string, bool) { s, ok := env[k]; return s, ok })
	if got, src := v.Get(PoolReturnDays); got != "45" || src != "environment" {
		t.Errorf("env override: %q %q", got, src)
	}
	if got, src := v.Get(StrictSeparation); got != "on" || src != "stored" {
		t.Errorf("an invalid env value must not win: %q %q", got, src)
	}
	if got, src := v.Get(PoolWarnDays); got != "3" || src != "default" {
		t.Errorf("default: %q %q", got, src)
	}
	if v.PoolReturnDays("a") != 90 || v.PoolReturnDays("b") != 45 || v.PoolReturnDays("") != 45 {
		t.Errorf("per level: a %d b %d", v.PoolReturnDays("a"), v.PoolReturnDays("b"))
	}
	if !v.Bool(StrictSeparation) || v.Location().String() != "Asia/Shanghai" {
		t.Error("typed getters")
	}
	if EnvName("pool.return_days.a") != "CUSTOS_POOL_RETURN_DAYS_A" {
		t.Error(EnvName("pool.return_days.a"))
	}
}
