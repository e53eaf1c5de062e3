"""Who is asking: signed reply addresses and links (``signed``), API bearer tokens
(``api_tokens``) and browser sessions (``sessions``)."""
