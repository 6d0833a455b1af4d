"""Reading and presenting what runs left: run tables, loss figures, and the scaling law fitted to the rungs."""
