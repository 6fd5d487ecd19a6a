package web

// uiCustomerRoutes are the customer pages (see ui_app.go).
func (s *Server) uiCustomerRoutes() []UIRoute {
	return nil
}
