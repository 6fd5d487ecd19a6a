package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/customercsv"
)

func (a *app) importCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Import records from files"}
	var encoding string
	var atomic bool
	customers := &cobra.Command{
		Use:   "customers FILE",
		Short: "Import customers from a CSV file",
		Long: `Import customers from a CSV file. The first line names the columns, in English or
Chinese (name/姓名/客户名称, phone/电话/手机, email/邮箱, address/地址,
id_number/身份证号, kind/类型, industry/行业, level/级别, source/来源,
status/状态, tags/标签, owner/负责人 (a user's email), notes/备注). Several
phones, emails or tags go in one cell separated by ; or 、.

UTF-8 (with or without BOM) and GBK/GB18030 files saved by Excel are detected;
--encoding chooses explicitly. Each bad row is reported with its line number and
the good rows are imported, unless --atomic: then one bad row imports nothing.`,
		Example: `  custos import customers --data ./data clients.csv
  custos import customers --atomic --encoding gbk 客户.csv`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch strings.ToLower(encoding) {
			case "auto", "utf-8", "utf8", "gbk", "gb18030":
			default:
				return usageError{fmt.Errorf("--encoding must be auto, utf-8, gbk or gb18030")}
			}
			if strings.EqualFold(encoding, "utf8") {
				encoding = "utf-8"
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			parsed, err := customercsv.Parse(f, strings.ToLower(encoding), func(email string) (string, error) {
				u, err := n.Auth.FindUserByEmail(a.ctx, email)
				return u.ID, err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			bar := a.newProgress(len(parsed.Rows), "importing")
			res, err := n.CRM.ImportCustomers(a.ctx, operator(), parsed.Rows, parsed.Errors, crm.ImportOptions{Atomic: atomic, Progress: bar.set})
			bar.done()
			for _, e := range res.Errors {
				fmt.Fprintln(a.stderr, e.Error())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "imported %d of %d rows from %s (%s)\n", res.Imported, res.Rows, args[0], parsed.Encoding)
			switch {
			case len(res.Errors) > 0 && atomic:
				return fmt.Errorf("nothing imported: %d row(s) have errors (listed above) and --atomic was given", len(res.Errors))
			case len(res.Errors) > 0:
				return fmt.Errorf("%d row(s) not imported (listed above)", len(res.Errors))
			}
			return nil
		},
	}
	customers.Flags().StringVar(&encoding, "encoding", "auto", "file encoding: auto, utf-8, gbk or gb18030")
	customers.Flags().BoolVar(&atomic, "atomic", false, "import all rows or none")
	cmd.AddCommand(customers)
	return cmd
}
