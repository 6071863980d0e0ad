-- Scores the seeded customers with the prediction function of a model that
-- the test trained with CREATE MODEL (FUNCTION predict_dbt_churn).
{{ config(materialized='table') }}

select
    customer_id,
    tenure,
    predict_dbt_churn(tenure, monthly_charges, contract) as will_churn
from {{ ref('dbt_customers') }}
