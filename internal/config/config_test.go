package config

import (
	"strings"
	"testing"
)

func TestValidateServe(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"localhost", func(c *Config) { c.Addr = "localhost:9000" }, ""},
		{"ipv6 loopback", func(c *Config) { c.Addr = "[::1]:9000" }, ""},
		{"public plain http", func(c *Config) { c.Addr = "0.0.0.0:8080" }, "refusing plain HTTP"},
		{"lan plain http", func(c *Config) { c.Addr = "192.168.1.5:8080" }, "refusing plain HTTP"},
		{"public self-signed", func(c *Config) { c.Addr = "0.0.0.0:8443"; c.TLSMode = "self-signed" }, ""},
		{"public with cert", func(c *Config) { c.Addr = ":8443"; c.TLSCert, c.TLSKey = "c.pem", "k.pem" }, ""},
		{"cert without key", func(c *Config) { c.TLSCert = "c.pem" }, "go together"},
		{"bad tls mode", func(c *Config) { c.TLSMode = "yes" }, "self-signed"},
		{"no port", func(c *Config) { c.Addr = "127.0.0.1" }, "HOST:PORT"},
		{"mysql url", func(c *Config) { c.DB = "mysql://x" }, "postgres://"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.ValidateServe()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"CUSTOS_DATA": "/srv/custos", "CUSTOS_DB": "postgres://h/db", "CUSTOS_ADDR": "127.0.0.1:1"}
	c := Default()
	c.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if c.DataDir != "/srv/custos" || c.DB != "postgres://h/db" || c.Addr != "127.0.0.1:1" {
		t.Fatalf("got %+v", c)
	}
	if c.DatabaseDSN() != "postgres://h/db" {
		t.Fatal(c.DatabaseDSN())
	}
	c.DB = ""
	if c.DatabaseDSN() != "/srv/custos/custos.db" {
		t.Fatal(c.DatabaseDSN())
	}
}
