package csvio

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Canonical column names, in the order used when listing them.
var canonicalColumns = []string{
	"name", "kind", "phone", "email", "address", "id_number", "industry",
	"level", "source", "status", "tags", "owner", "notes",
}

// builtinAliases maps header text to a canonical column. Keys are matched
// after normalizeHeader, so case, width and separators ("_", "-", runs of
// spaces) do not matter; every canonical name is also an alias of itself.
var builtinAliases = map[string][]string{
	"name": {
		"customer name", "customer", "client", "client name", "full name",
		"company", "company name", "account", "account name",
		"姓名", "客户名称", "客户名", "客户姓名", "名称", "公司名称", "公司", "企业名称", "单位名称",
	},
	"kind": {
		"type", "customer type", "client type", "customer kind",
		"类型", "客户类型", "客户类别", "类别",
	},
	"phone": {
		"mobile", "mobile phone", "mobile number", "cell", "cellphone", "cell phone",
		"telephone", "tel", "phone number", "phone no", "contact number",
		"电话", "手机", "手机号", "手机号码", "联系电话", "电话号码", "联系方式", "移动电话",
	},
	"email": {
		"e-mail", "email address", "e-mail address", "mail",
		"邮箱", "电子邮箱", "电子邮件", "邮箱地址", "电子邮件地址",
	},
	"address": {
		"addr", "street address", "postal address", "mailing address",
		"地址", "联系地址", "通讯地址", "详细地址",
	},
	"id_number": {
		"id", "id number", "id no", "id card", "id card number", "identity number",
		"national id", "document number",
		"身份证", "身份证号", "身份证号码", "证件号", "证件号码",
	},
	"industry": {
		"sector", "business sector",
		"行业", "所属行业", "行业类别",
	},
	"level": {
		"grade", "tier", "rank", "customer level", "priority",
		"级别", "客户级别", "等级", "客户等级",
	},
	"source": {
		"lead source", "customer source", "channel", "origin",
		"来源", "客户来源", "来源渠道", "渠道",
	},
	"status": {
		"state", "customer status", "stage",
		"状态", "客户状态",
	},
	"tags": {
		"tag", "labels", "label", "keywords",
		"标签", "客户标签",
	},
	"owner": {
		"account owner", "assigned to", "assignee", "sales rep", "salesperson", "manager",
		"负责人", "所有者", "归属人", "客户经理", "销售负责人",
	},
	"notes": {
		"note", "remarks", "remark", "comment", "comments", "description", "memo",
		"备注", "说明", "备注信息", "描述",
	},
}

// aliasIndex is builtinAliases inverted and normalized: header key -> column.
var aliasIndex = func() map[string]string {
	m := make(map[string]string)
	for _, c := range canonicalColumns {
		m[normalizeHeader(c)] = c
		for _, a := range builtinAliases[c] {
			k := normalizeHeader(a)
			if prev, ok := m[k]; ok && prev != c {
				panic("csvio: alias " + a + " maps to both " + prev + " and " + c)
			}
			m[k] = c
		}
	}
	return m
}()

func isCanonical(s string) bool {
	for _, c := range canonicalColumns {
		if c == s {
			return true
		}
	}
	return false
}

// cleanHeaderCell removes surrounding whitespace and byte order marks.
func cleanHeaderCell(s string) string {
	s = strings.ReplaceAll(s, "\uFEFF", "")
	return strings.TrimSpace(s)
}

// normalizeHeader turns header text into a lookup key: NFKC (full-width
// Latin becomes ASCII), lower case, "_" and "-" treated as spaces, runs of
// whitespace collapsed, and the "*" markers that import templates use for
// required columns removed from both ends.
func normalizeHeader(s string) string {
	s = norm.NFKC.String(cleanHeaderCell(s))
	s = strings.ToLower(s)
	s = strings.Trim(s, "* \t")
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == '_' || r == '-' || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
