"""The launcher: starts the component named by COMPONENT_NAME (webapi or scheduld)."""
