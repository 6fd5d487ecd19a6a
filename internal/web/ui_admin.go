package web

// uiAdminRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiAdminRoutes() []UIRoute {
	return nil
}
