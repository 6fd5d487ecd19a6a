package monitor

// RuleTest is the rule of the message an administrator sends to try a sink.
const RuleTest = "custos.test"

// Title is an alert's title in English and Simplified Chinese.
type Title struct {
	En string `json:"en"`
	Zh string `json:"zh-CN"`
}

// titles name the known rules. The rules of the stream detectors are named
// here by their strings, so a title exists as soon as a detector raises one.
var titles = map[string]Title{
	RuleTest:                      {"Test message from Custos", "Custos 测试消息"},
	RuleRevealQuota:               {"Daily reveal quota exceeded", "当日查看明文次数超限"},
	RuleSelfGrant:                 {"Administrator granted themselves data access", "管理员给自己授予了数据权限"},
	RuleSeparationDisabled:        {"Strict separation of duties turned off", "三权分立已关闭"},
	RulePoolReturnScheduled:       {"Customers about to return to the public pool", "客户即将退回公海"},
	RuleTemplateWidened:           {"A role template widened access to customer data", "角色模板扩大了客户数据访问范围"},
	RuleSeparatedAccountAction:    {"Administrator created a user or set a password under strict separation", "三权分立下管理员创建用户或设置密码"},
	RuleAuditChainBroken:          {"Audit trail tampering detected", "审计日志链被篡改"},
	"auth.brute_force":            {"Repeated failed logins (brute force)", "多次登录失败（疑似暴力破解）"},
	"monitor.bulk_view":           {"One user viewed an unusual number of customers", "单个用户查看客户数量异常"},
	"monitor.bulk_view_suspended": {"Bulk viewing of customers: user suspended", "批量查看客户：用户已被暂停"},
	"access.probing":              {"Repeated permission denials (probing)", "多次越权访问被拒（疑似试探）"},
	"reveal.burst":                {"Burst of reveals of masked fields", "短时间内大量查看明文"},
	"export.large":                {"Large export", "大批量导出"},
	"auth.new_ip":                 {"Login from a new IP address", "从新 IP 地址登录"},
	"auth.odd_hours":              {"Login outside allowed hours", "非允许时段登录"},
	"auth.dormant_account":        {"Dormant account active again", "休眠账号重新活跃"},
	"access.after_role_change":    {"Data access right after a role change", "角色变更后立即访问数据"},
	"backup.failed":               {"Backup failed", "备份失败"},
	"backup.stale":                {"No recent backup", "备份已过期"},
}

// TitleOf returns the title of rule, or the rule's name in both languages
// when it has none.
func TitleOf(rule string) Title {
	if t, ok := titles[rule]; ok {
		return t
	}
	return Title{En: rule, Zh: rule}
}

// severityZh names the severities in Chinese.
var severityZh = map[string]string{Info: "提示", Low: "低", Medium: "中", High: "高", Critical: "严重"}
