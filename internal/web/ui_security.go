package web

// uiSecurityRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiSecurityRoutes() []UIRoute {
	return nil
}
