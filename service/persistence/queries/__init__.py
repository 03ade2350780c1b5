"""SQL by subject (surveys, clients, events, episodes, ...): the handlers and views call these
functions instead of building statements themselves."""
