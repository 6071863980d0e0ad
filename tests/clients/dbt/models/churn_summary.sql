{{ config(materialized='view') }}

select will_churn, count(*) as customers, avg(tenure) as avg_tenure
from {{ ref('churn_scores') }}
group by will_churn
