"""Wake-on-LAN: magic packets, broadcast discovery, the wolwake / wolsleep commands."""
