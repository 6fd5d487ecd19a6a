package node

import "github.com/custos/custos/internal/audit"

func auditEvent(actor string) audit.Event { return audit.Event{Actor: actor} }
