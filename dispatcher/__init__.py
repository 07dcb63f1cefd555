"""dispatcher: maintenance-window notices by fax, e-mail and SMS, exactly once."""
