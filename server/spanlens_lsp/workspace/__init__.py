"""What the CLI and the language server both do with a workspace, without pygls."""
