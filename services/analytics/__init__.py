"""Analytics: KPIs, sentiment, hot topics, crisis alerts and reports, from the domain event stream."""
