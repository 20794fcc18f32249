"""The tutorial's Lambda function as published, our reference for "the tutorial's path".

Changed only in two places: joblib is imported directly (``sklearn.externals.joblib`` is gone
from scikit-learn) and the model path comes from ``MODEL_URI`` (default ``models/logit.pkl``).
Everything else, including the print of every event and the pandas DataFrame built from the
query string, is kept, because it is part of what the tutorial's users pay per request.
"""

import os

import joblib
import pandas as pd

model = joblib.load(os.environ.get("MODEL_URI", "models/logit.pkl"))


def lambda_handler(event, context):
    p = event["queryStringParameters"]
    print("Event params: " + str(p))
    x = pd.DataFrame.from_dict(p, orient="index").transpose()
    pred = model.predict_proba(x)[0][1]
    result = "Prediction " + str(pred)
    return {"body": result}
