"""Train the tutorial's logistic-regression model and write it in every serialization we compare."""
