"""The protocol edge: a pygls server whose handlers fetch, delegate and return."""
