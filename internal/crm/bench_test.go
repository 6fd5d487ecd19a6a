package crm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
	"github.com/custos/custos/internal/seal"
)

// noopCipher stores plaintext: it exists only here, to measure what
// encryption costs on the guarded path. Never use it outside a benchmark.
type noopCipher struct{}

func (noopCipher) Seal(_ seal.Key, _ seal.AAD, pt []byte) ([]byte, error) {
	return append([]byte(nil), pt...), nil
}
func (noopCipher) Open(_ seal.Key, _ seal.AAD, ct []byte) ([]byte, error) {
	return append([]byte(nil), ct...), nil
}

var ciphers = []struct {
	name string
	c    seal.Cipher
}{{"cipher=aes-gcm", seal.GCM{}}, {"cipher=none", noopCipher{}}}

const benchCustomers = 2000

// benchEnv is a SQLite data directory with benchCustomers demo customers.
func benchEnv(b *testing.B, c seal.Cipher) (*env, []crm.Customer) {
	b.Helper()
	e := newEnv(b, "sqlite", crm.Options{Cipher: c})
	g := demo.New(42, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	var rows []crm.ImportRow
	for i, dc := range g.Customers(benchCustomers) {
		f := crm.CustomerFields{Name: str(dc.Name), Kind: str(dc.Kind), Phones: &dc.Phones, Emails: &dc.Emails, Address: str(dc.Address),
			IDNumber: str(dc.IDNumber), Industry: str(dc.Industry), Level: str(dc.Level), Status: str(dc.Status), Tags: &dc.Tags, Notes: str(dc.Notes)}
		rows = append(rows, crm.ImportRow{Line: i, Fields: f})
	}
	if res, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, nil, crm.ImportOptions{}); err != nil || len(res.Errors) > 0 {
		b.Fatalf("import: %v %v", err, res.Errors)
	}
	page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Limit: 200})
	if err != nil {
		b.Fatal(err)
	}
	return e, page.Items
}

func BenchmarkCreateCustomer(b *testing.B) {
	for _, c := range ciphers {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, "sqlite", crm.Options{Cipher: c.c})
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				_, err := e.n.CRM.CreateCustomer(e.ctx, e.s1, crm.CustomerFields{
					Name: str(fmt.Sprintf("杭州云启科技有限公司 %d", i)), Phones: strs(fmt.Sprintf("138%08d", i)),
					Emails: strs(fmt.Sprintf("c%d@yunqi.com.cn", i)), Address: str("浙江省杭州市西湖区文三路 478 号"),
					Notes: str("客户对报价比较敏感，下周二再跟进。"),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetCustomer(b *testing.B) {
	for _, c := range ciphers {
		b.Run(c.name, func(b *testing.B) {
			e, cs := benchEnv(b, c.c)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := e.n.CRM.GetCustomer(e.ctx, e.admin, cs[i%len(cs)].ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSearchCustomer(b *testing.B) {
	for _, c := range ciphers {
		for _, kind := range []string{"phone", "name-prefix"} {
			b.Run(c.name+"/"+kind, func(b *testing.B) {
				e, cs := benchEnv(b, c.c)
				var qs []string
				for _, cu := range cs {
					switch {
					case kind == "phone" && len(cu.Phones) > 0:
						qs = append(qs, cu.Phones[0])
					case kind == "name-prefix":
						qs = append(qs, string([]rune(cu.Name)[:2]))
					}
				}
				b.ResetTimer()
				found := 0
				for i := 0; b.Loop(); i++ {
					page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Q: qs[i%len(qs)], Limit: 20})
					if err != nil {
						b.Fatal(err)
					}
					found += len(page.Items)
				}
				if found == 0 {
					b.Fatal("searches found nothing")
				}
			})
		}
	}
}
