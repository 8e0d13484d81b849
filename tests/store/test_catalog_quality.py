"""Search quality: recall@5 of hand-labelled queries over a hand-written catalog of 220 assets.

The assets are a company's worth of ML work across ten teams. Each query is what someone would type
into /catalog, and its relevant assets were chosen by reading the table below, not by running the
search. Vocabulary overlaps on purpose (customers, forecasts, weekly dashboards, fraud and credit
risk) so ranking has to do real work.
"""

from sqlalchemy import insert

from bot.services import catalog as catalog_service
from store import catalog
from store.models import Person, Project, RiskTier

PEOPLE = {
    "U0FIN001": "Fatima Haddad", "U0MKT001": "Marco Rossi", "U0ML0001": "Eli Cohen", "U0PRC001": "Priya Nair",
    "U0SUP001": "Sam Okafor", "U0CS0001": "Tomas Berg", "U0RSK001": "Rita Alvarez", "U0REC001": "Wei Zhang",
    "U0HR0001": "Hana Sato", "U0PLT001": "Omar Khan", "U0DS0001": "Noor Aziz", "U0BIZ001": "Dana White",
}
PROJECTS = {
    "finance-text": ("Finance text analytics", "U0FIN001"), "churn": ("Customer churn", "U0MKT001"),
    "card-fraud": ("Card fraud detection", "U0ML0001"), "pricing": ("Dynamic pricing", "U0PRC001"),
    "supply": ("Supply chain forecasting", "U0SUP001"), "support": ("Support ticket routing", "U0CS0001"),
    "credit": ("Credit risk scoring", "U0RSK001"), "recsys": ("Product recommendations", "U0REC001"),
    "workforce": ("Workforce planning", "U0HR0001"), "platform": ("ML platform", "U0PLT001"),
}

# slug | kind | project | owner | tags | title | description
ASSETS = """
fin-project | project | finance-text | U0FIN001 | nlp,finance | Finance text analytics | Language models over invoices, contracts, earnings calls and customer feedback for the finance team
review-sentiment | model | finance-text | U0FIN001 | nlp,sentiment,reviews | Review sentiment classifier | Scores the sentiment of customer reviews and app store comments, positive to negative, fine-tuned transformer
review-sentiment-v3 | model_version | finance-text | U0FIN001 | nlp,sentiment | Review sentiment classifier v3 | Third version, retrained on 2026 reviews with sarcasm examples
review-corpus | dataset | finance-text | U0FIN001 | nlp,reviews | Customer review corpus | Two million product reviews with star ratings, language and country, deduplicated
review-labels | dataset | finance-text | U0DS0001 | nlp,labels | Sentiment labels for reviews | Hand labelled sentiment of 40k customer reviews, three annotators each
sentiment-dash | dashboard | finance-text | U0BIZ001 | sentiment,weekly | Weekly customer sentiment | Share of negative reviews per product line, week over week
invoice-extractor | model | finance-text | U0FIN001 | nlp,ocr,invoices | Invoice field extractor | Reads supplier invoices and extracts amounts, VAT, due dates and IBAN
invoice-samples | dataset | finance-text | U0FIN001 | invoices,ocr | Scanned invoice samples | Ten thousand scanned supplier invoices with the fields typed in by accounts payable
contract-clauses | model | finance-text | U0DS0001 | nlp,legal | Contract clause tagger | Finds termination, liability and renewal clauses in supplier contracts
earnings-summarizer | model | finance-text | U0FIN001 | nlp,summarization | Earnings call summarizer | Summaries of quarterly earnings call transcripts of competitors
earnings-transcripts | dataset | finance-text | U0FIN001 | nlp,transcripts | Earnings call transcripts | Transcripts of public earnings calls since 2018
fin-nlp-repo | repository | finance-text | U0FIN001 | nlp,python | finance-nlp | Training and serving code for the finance language models
tokenizer-eval | notebook | finance-text | U0DS0001 | nlp,evaluation | Tokenizer comparison | Compares tokenizers on financial vocabulary and currency symbols
expense-anomaly | model | finance-text | U0FIN001 | anomaly,expenses | Expense report anomaly detector | Flags unusual employee expense claims for audit
expense-claims | dataset | finance-text | U0FIN001 | expenses | Employee expense claims | Expense claims with category, amount, approver and outcome of audit
feedback-topics | notebook | finance-text | U0DS0001 | nlp,topics | Customer feedback topic modelling | Clusters open text feedback into topics with embeddings and HDBSCAN
complaint-classifier | model | finance-text | U0FIN001 | nlp,complaints | Complaint classifier | Routes written customer complaints to the right finance desk
sentiment-api | plugin | finance-text | U0FIN001 | nlp,api | Sentiment scoring API | HTTP endpoint that scores any text for sentiment, used by marketing and support
fx-exposure | dashboard | finance-text | U0BIZ001 | finance,currency | Currency exposure | Open positions per currency and hedging ratio
gl-reconciliation | notebook | finance-text | U0FIN001 | finance,accounting | Ledger reconciliation checks | Matches general ledger entries against bank statements
churn-project | project | churn | U0MKT001 | marketing,retention | Customer churn | Predict which subscribers will cancel and which offers keep them
churn-model | model | churn | U0MKT001 | churn,retention | Subscriber churn predictor | Probability that a subscriber cancels in the next 30 days, gradient boosted trees
churn-model-v7 | model_version | churn | U0MKT001 | churn | Subscriber churn predictor v7 | Version 7 adds tenure buckets and payment failures
churn-features | dataset | churn | U0DS0001 | churn,features | Churn feature table | Monthly usage, tenure, plan, payment failures and support contacts per subscriber
churn-dash | dashboard | churn | U0BIZ001 | churn,weekly | Churn risk by segment | Predicted churn and actual cancellations per customer segment
retention-offers | model | churn | U0MKT001 | uplift,retention | Retention offer uplift model | Which discount or bundle changes a subscriber's decision to cancel
uplift-experiments | dataset | churn | U0MKT001 | uplift,experiments | Retention offer experiments | Randomised offer experiments with treatment, control and outcome
churn-eda | notebook | churn | U0DS0001 | churn,eda | Churn exploratory analysis | Why customers leave: tenure, price increases and outages
cancellation-reasons | notebook | churn | U0MKT001 | churn,nlp | Cancellation reason mining | Reads free text cancellation reasons and counts the themes
churn-repo | repository | churn | U0MKT001 | python | churn-pipelines | Feature pipelines and batch scoring for churn
survival-notebook | notebook | churn | U0DS0001 | survival,churn | Survival analysis of subscribers | Kaplan-Meier and Cox models of time to cancellation
clv-model | model | churn | U0MKT001 | clv,marketing | Customer lifetime value | Expected margin of a customer over the next three years
clv-dash | dashboard | churn | U0BIZ001 | clv | Lifetime value cohorts | Customer lifetime value by acquisition month and channel
winback-campaign | notebook | churn | U0MKT001 | marketing,campaigns | Win-back campaign results | Response rates of emails sent to former subscribers
crm-sync | plugin | churn | U0PLT001 | crm,integration | CRM score sync | Pushes churn and lifetime value scores to the CRM every night
nps-survey | dataset | churn | U0MKT001 | survey,nps | Net promoter survey answers | Quarterly NPS answers with comments, linked to subscriber ids
plan-downgrades | dataset | churn | U0DS0001 | churn | Plan downgrades | Every plan change from premium to basic with date and reason
churn-alerting | plugin | churn | U0MKT001 | alerts | Churn spike alert | Posts to Slack when weekly cancellations jump
churn-calibration | notebook | churn | U0DS0001 | calibration | Churn model calibration | Reliability curves of the churn predictor per segment
segment-model | model | churn | U0MKT001 | segmentation,marketing | Customer segmentation | K-means segments of subscribers by usage and spend
fraud-project | project | card-fraud | U0ML0001 | fraud,payments | Card fraud detection | Scores card transactions at authorization and blocks the likely fraudulent ones
fraud-detector | model | card-fraud | U0ML0001 | fraud,payments,classifier | fraud-detector | Classifier scoring card transactions at authorization for fraud
fraud-detector-v2 | model_version | card-fraud | U0ML0001 | fraud | fraud-detector v2 | Retrained after input drift on card age, better recall on new cards
transactions | dataset | card-fraud | U0ML0001 | fraud,payments | Scored card transactions | Every card authorization with amount, merchant category, country, channel and fraud score
chargebacks | dataset | card-fraud | U0ML0001 | fraud,chargebacks | Chargeback records | Confirmed fraud chargebacks from the card schemes, used as labels
fraud-rules | repository | card-fraud | U0ML0001 | fraud,rules | fraud-rules | Hand written blocking rules that run before the model
fraud-dash | dashboard | card-fraud | U0BIZ001 | fraud,weekly | Missed fraud this week | Fraud amount approved, false alarms and blocked customers per week
merchant-risk | model | card-fraud | U0DS0001 | fraud,merchants | Merchant risk score | Risk of a merchant turning fraudulent or going bankrupt
account-takeover | model | card-fraud | U0ML0001 | fraud,security | Account takeover detector | Detects logins from stolen credentials using device and behaviour signals
device-fingerprints | dataset | card-fraud | U0ML0001 | security,devices | Device fingerprints | Browser and phone fingerprints seen at login
fraud-graph | notebook | card-fraud | U0DS0001 | fraud,graphs | Fraud ring graph analysis | Links cards, devices and addresses to find fraud rings
drift-study | notebook | card-fraud | U0ML0001 | drift,monitoring | Card age drift investigation | Why card age drifted in October and what it did to recall
fraud-labeling | plugin | card-fraud | U0ML0001 | labels | Analyst labelling tool | Lets fraud analysts confirm or clear flagged transactions
threshold-tuning | notebook | card-fraud | U0ML0001 | fraud,thresholds | Fraud threshold tuning | Picks the blocking threshold that balances lost fraud and blocked good customers
fraud-features | repository | card-fraud | U0ML0001 | fraud,features | fraud-features | Velocity and merchant features computed in the stream processor
three-d-secure | dataset | card-fraud | U0ML0001 | payments | 3-D Secure outcomes | Challenge and authentication results of online card payments
fraud-sim | notebook | card-fraud | U0DS0001 | simulation | Synthetic fraud scenarios | Generates synthetic transactions with planted fraud patterns for tests
aml-screening | model | card-fraud | U0RSK001 | aml,compliance | Anti money laundering screening | Flags suspicious transfers for the compliance team
sanctions-list | dataset | card-fraud | U0RSK001 | compliance,sanctions | Sanctions lists | Daily copy of international sanctions lists with aliases
fraud-explainer | plugin | card-fraud | U0ML0001 | explainability | Fraud score explanations | SHAP explanations of each blocked transaction for analysts
pricing-project | project | pricing | U0PRC001 | pricing | Dynamic pricing | Sets prices per product and region from demand and competition
price-optimizer | model | pricing | U0PRC001 | pricing,optimization | Price optimizer | Chooses the margin maximising price under demand uncertainty
elasticity | notebook | pricing | U0DS0001 | pricing,elasticity | Price elasticity estimates | Log-log regressions of demand on price per product category
competitor-prices | dataset | pricing | U0PRC001 | pricing,scraping | Competitor price feed | Daily scraped prices of competitors for the top 5,000 products
price-dash | dashboard | pricing | U0BIZ001 | pricing,margin | Margin and price index | Our prices against competitors and the margin we keep
promo-effects | model | pricing | U0PRC001 | promotions | Promotion effect model | Incremental sales of a promotion after cannibalisation
promo-calendar | dataset | pricing | U0PRC001 | promotions | Promotion calendar | Every promotion with dates, discount and products since 2021
markdown-optimizer | model | pricing | U0PRC001 | markdown,inventory | Markdown optimizer | Clearance price steps for seasonal stock
pricing-repo | repository | pricing | U0PRC001 | python | pricing-engine | Price computation service and its rules
price-experiments | notebook | pricing | U0DS0001 | experiments,pricing | Price A/B tests | Analysis of randomised price tests with CUPED
surge-pricing | model | pricing | U0PRC001 | pricing,delivery | Delivery fee surge model | Raises delivery fees when couriers are scarce
basket-analysis | notebook | pricing | U0DS0001 | baskets | Market basket analysis | Which products are bought together, association rules
price-guardrails | plugin | pricing | U0PRC001 | pricing,guardrails | Price change guardrails | Blocks price changes over 20% without a human approval
demand-sensing | model | pricing | U0PRC001 | demand | Short term demand sensing | Next day demand per product from web traffic and weather
pricing-v4 | model_version | pricing | U0PRC001 | pricing | Price optimizer v4 | Adds competitor prices as a feature
coupon-fraud | model | pricing | U0ML0001 | fraud,coupons | Coupon abuse detector | Finds accounts that farm sign-up coupons
coupon-redemptions | dataset | pricing | U0PRC001 | coupons | Coupon redemptions | Every coupon use with account, basket and discount
price-history | dataset | pricing | U0PRC001 | pricing | Price history | Our own price per product and day since 2019
bundle-recs | notebook | pricing | U0REC001 | bundles | Bundle pricing study | Which bundles to offer and at what discount
supply-project | project | supply | U0SUP001 | forecasting,supply-chain | Supply chain forecasting | Demand forecasts and replenishment for warehouses and stores
store-forecast | model | supply | U0SUP001 | forecasting,demand | Store level demand forecast | Daily sales forecast per store and product, 28 days ahead
store-forecast-v12 | model_version | supply | U0SUP001 | forecasting | Store level demand forecast v12 | Adds holiday calendar and weather features
sales-history | dataset | supply | U0SUP001 | sales | Store sales history | Daily unit sales per store and product since 2018
replenishment | model | supply | U0SUP001 | inventory,replenishment | Replenishment planner | Order quantities per warehouse from forecasts and lead times
lead-times | dataset | supply | U0SUP001 | suppliers | Supplier lead times | Promised and actual delivery times of each supplier order
forecast-dash | dashboard | supply | U0BIZ001 | forecasting,accuracy | Forecast accuracy | Weighted absolute percentage error per store and category
stockouts | notebook | supply | U0DS0001 | inventory,stockouts | Stockout root causes | Why shelves went empty: forecast misses, late suppliers, data errors
warehouse-capacity | model | supply | U0SUP001 | warehouses | Warehouse capacity model | Pallet space and picking capacity per warehouse and week
weather-feed | dataset | supply | U0PLT001 | weather | Weather forecasts | Hourly weather forecasts per postcode from the weather provider
forecast-repo | repository | supply | U0SUP001 | python,forecasting | demand-forecasting | LightGBM and Prophet forecasting pipelines
holiday-calendar | dataset | supply | U0SUP001 | calendar | Holiday calendar | Public and school holidays per region
route-optimizer | model | supply | U0SUP001 | logistics,routing | Delivery route optimizer | Vehicle routes for store deliveries
truck-telemetry | dataset | supply | U0SUP001 | logistics,iot | Truck telemetry | GPS and temperature readings from delivery trucks
shrinkage | notebook | supply | U0DS0001 | inventory,loss | Inventory shrinkage analysis | Theft, damage and expiry losses per store
fresh-waste | model | supply | U0SUP001 | waste,fresh | Fresh food waste predictor | Which fresh products will expire unsold
supplier-risk | model | supply | U0RSK001 | suppliers,risk | Supplier risk score | Risk that a supplier delivers late or fails
forecast-reconciler | plugin | supply | U0SUP001 | forecasting | Forecast reconciliation | Makes store forecasts add up to warehouse totals
new-product-forecast | notebook | supply | U0DS0001 | forecasting,cold-start | New product forecasting | Forecasts for products with no sales history from similar items
cold-chain | dashboard | supply | U0SUP001 | logistics | Cold chain temperature | Trucks and warehouses out of temperature range
support-project | project | support | U0CS0001 | support,nlp | Support ticket routing | Route and answer customer support tickets faster
ticket-router | model | support | U0CS0001 | nlp,routing,tickets | Ticket router | Sends each support ticket to the team that can solve it
ticket-router-v5 | model_version | support | U0CS0001 | tickets | Ticket router v5 | Multilingual version with German and French
tickets | dataset | support | U0CS0001 | tickets | Support tickets | Every support ticket with text, channel, team and resolution time
reply-suggester | model | support | U0CS0001 | nlp,generation | Reply suggestions | Suggests replies to agents from past answers
csat-model | model | support | U0CS0001 | csat,satisfaction | Satisfaction predictor | Predicts the customer satisfaction score before the survey
csat-dash | dashboard | support | U0BIZ001 | csat,weekly | Support satisfaction | CSAT, first response time and backlog per team
intent-taxonomy | notebook | support | U0DS0001 | nlp,intents | Intent taxonomy | Clusters ticket texts into intents for the router
chatbot | plugin | support | U0CS0001 | chatbot,nlp | Help center chatbot | Answers common questions in chat before a human takes over
call-transcripts | dataset | support | U0CS0001 | speech,transcripts | Call center transcripts | Speech to text transcripts of support calls
speech-to-text | model | support | U0PLT001 | speech | Speech recognition | Transcribes call center audio
escalation-predictor | model | support | U0CS0001 | escalations | Escalation predictor | Which tickets will be escalated to a manager
support-repo | repository | support | U0CS0001 | python | support-ml | Ticket router and reply suggester code
agent-staffing | notebook | support | U0HR0001 | staffing,forecasting | Agent staffing forecast | How many agents per hour from ticket volume forecasts
ticket-volume | model | support | U0CS0001 | forecasting | Ticket volume forecast | Hourly number of incoming tickets per channel
language-detect | plugin | support | U0CS0001 | nlp,language | Language detection | Detects the language of a ticket
faq-embeddings | dataset | support | U0CS0001 | embeddings | Help center embeddings | Sentence embeddings of every help center article
toxicity | model | support | U0CS0001 | nlp,moderation | Toxic message filter | Flags abusive messages to agents
resolution-time | notebook | support | U0DS0001 | tickets | Resolution time drivers | What makes tickets take long to close
credit-project | project | credit | U0RSK001 | credit,risk | Credit risk scoring | Scores loan and credit line applications for default risk
default-risk | model | credit | U0RSK001 | credit,risk,loans | Loan default risk | Probability that a loan applicant defaults within 12 months
default-risk-v9 | model_version | credit | U0RSK001 | credit | Loan default risk v9 | Monotonic constraints on income and debt ratio
loan-applications | dataset | credit | U0RSK001 | credit,loans | Loan applications | Applications with income, debt, employment and outcome
bureau-data | dataset | credit | U0RSK001 | credit,bureau | Credit bureau reports | Monthly credit bureau scores and delinquencies
scorecard | model | credit | U0RSK001 | credit,scorecard | Application scorecard | Points based scorecard for regulators, logistic regression
risk-dash | dashboard | credit | U0BIZ001 | credit,portfolio | Credit portfolio risk | Expected loss, default rates and vintages of the loan book
collections | model | credit | U0RSK001 | collections | Collections prioritizer | Which late borrowers to call first
ifrs9 | notebook | credit | U0RSK001 | ifrs9,regulatory | IFRS 9 expected credit loss | Staging and expected loss provisions for the loan book
stress-test | notebook | credit | U0RSK001 | regulatory,stress | Macroeconomic stress test | Default rates under recession scenarios
fairness-audit | notebook | credit | U0DS0001 | fairness,audit | Credit model fairness audit | Disparate impact of the default risk model by age and gender
credit-repo | repository | credit | U0RSK001 | python | credit-models | Scorecard and default risk model training
limit-setting | model | credit | U0RSK001 | credit,limits | Credit limit setting | Initial and increased credit limits for cards
income-verification | model | credit | U0RSK001 | documents,ocr | Income verification | Reads payslips and bank statements to verify income
payslips | dataset | credit | U0RSK001 | documents | Payslip scans | Scanned payslips with verified income
early-warning | plugin | credit | U0RSK001 | alerts,credit | Early warning signals | Alerts when a borrower's bureau score drops
bnpl-risk | model | credit | U0RSK001 | bnpl | Buy now pay later risk | Default risk of instalment purchases at checkout
model-risk-inventory | dashboard | credit | U0RSK001 | governance | Model risk inventory | Every model with its risk tier, validator and next review
reject-inference | notebook | credit | U0DS0001 | credit | Reject inference study | Estimating defaults of rejected applicants
recsys-project | project | recsys | U0REC001 | recommendations | Product recommendations | Recommends products on the website, app and emails
home-recs | model | recsys | U0REC001 | recommendations,ranking | Home page recommender | Two tower model ranking products for the home page
home-recs-v6 | model_version | recsys | U0REC001 | recommendations | Home page recommender v6 | Adds session features
clickstream | dataset | recsys | U0REC001 | clickstream,events | Clickstream events | Every page view, click and add to cart on web and app
product-embeddings | dataset | recsys | U0REC001 | embeddings | Product embeddings | 128 dimension embeddings of every product from co-views
similar-items | model | recsys | U0REC001 | recommendations | Similar items | You may also like, from product embeddings
search-ranking | model | recsys | U0REC001 | search,ranking | Site search ranking | Learning to rank model for the search box
query-logs | dataset | recsys | U0REC001 | search | Search query logs | Search queries, results shown and clicks
recs-dash | dashboard | recsys | U0BIZ001 | recommendations,weekly | Recommendation revenue | Revenue and click through rate from recommendations
email-recs | model | recsys | U0MKT001 | email,recommendations | Email recommendations | Products to feature in the weekly newsletter
cold-start | notebook | recsys | U0DS0001 | cold-start | Cold start for new users | Recommendations for visitors with no history
recs-repo | repository | recsys | U0REC001 | python | recommenders | Training and serving of the recommenders
ab-platform | plugin | recsys | U0PLT001 | experiments | Experiment assignment | Assigns users to A/B test variants
ranking-eval | notebook | recsys | U0REC001 | evaluation,ranking | Offline ranking evaluation | NDCG and recall of recommenders on held out sessions
image-tags | model | recsys | U0REC001 | vision | Product image tagger | Tags product photos with colour, pattern and style
product-photos | dataset | recsys | U0REC001 | vision,images | Product photos | Catalogue photos with tags
personalization-api | plugin | recsys | U0REC001 | api | Personalization API | Returns recommendations for a user id
diversity-study | notebook | recsys | U0DS0001 | diversity | Recommendation diversity | Are we only recommending bestsellers
size-advisor | model | recsys | U0REC001 | fashion,returns | Size advisor | Recommends a clothing size to reduce returns
returns | dataset | recsys | U0REC001 | returns | Product returns | Returned items with reason codes
workforce-project | project | workforce | U0HR0001 | hr | Workforce planning | Hiring, attrition and scheduling for stores and offices
attrition | model | workforce | U0HR0001 | hr,attrition | Employee attrition risk | Which employees are likely to resign in the next six months
attrition-v2 | model_version | workforce | U0HR0001 | hr | Employee attrition risk v2 | Removes protected attributes from features
hr-records | dataset | workforce | U0HR0001 | hr,pii | Employee records | Tenure, role, pay band and manager per employee, restricted
shift-scheduler | model | workforce | U0HR0001 | scheduling | Shift scheduler | Store staff rosters from footfall forecasts
footfall | dataset | workforce | U0SUP001 | footfall | Store footfall counts | Visitors per store and hour from door counters
hiring-dash | dashboard | workforce | U0HR0001 | hr,hiring | Hiring funnel | Applicants, interviews and offers per role
cv-screening | model | workforce | U0HR0001 | hr,nlp | CV screening | Ranks applicant CVs for recruiters, under review for bias
pay-equity | notebook | workforce | U0DS0001 | hr,fairness | Pay equity analysis | Pay gaps by gender and role
engagement-survey | dataset | workforce | U0HR0001 | survey,hr | Employee engagement survey | Yearly engagement answers with comments
absence-forecast | model | workforce | U0HR0001 | forecasting,absence | Absence forecast | Sick leave per store and week
hr-repo | repository | workforce | U0HR0001 | python | people-analytics | Attrition and scheduling code
skills-graph | notebook | workforce | U0DS0001 | skills | Skills graph | Skills of employees from CVs and training records
training-recs | plugin | workforce | U0HR0001 | learning | Training recommendations | Suggests courses to employees
overtime | dashboard | workforce | U0HR0001 | hr | Overtime by store | Overtime hours and cost per store
onboarding | notebook | workforce | U0HR0001 | hr | Onboarding success | Which onboarding steps predict staying a year
commute | notebook | workforce | U0DS0001 | hr | Commute and attrition | Does commute time drive resignations
labor-cost | model | workforce | U0HR0001 | costs | Labour cost forecast | Monthly staff cost per region
interview-notes | dataset | workforce | U0HR0001 | hr,pii | Interview notes | Structured interview scores, restricted
platform-project | project | platform | U0PLT001 | platform,mlops | ML platform | Shared tooling for training, serving and monitoring models
feature-store | repository | platform | U0PLT001 | features,mlops | feature-store | Online and offline feature store with point in time joins
model-serving | repository | platform | U0PLT001 | serving,mlops | model-serving | Kubernetes model serving with canary releases
flywheel | plugin | platform | U0PLT001 | slack,mlops | Flywheel Slack app | Alerts, retraining, sign-offs and the catalog in Slack
drift-monitor | plugin | platform | U0PLT001 | monitoring,drift | Drift monitor | Compares production inputs with training data every hour
training-cluster | dashboard | platform | U0PLT001 | gpu,costs | GPU cluster usage | GPU hours and cost per team
mlflow | plugin | platform | U0PLT001 | tracking | Experiment tracking | Tracking server for runs, parameters and metrics
airflow-dags | repository | platform | U0PLT001 | orchestration | ml-dags | Airflow DAGs for batch scoring and retraining
data-quality | plugin | platform | U0PLT001 | data-quality | Data quality checks | Expectations on every feature table: nulls, ranges, freshness
latency-dash | dashboard | platform | U0PLT001 | serving,latency | Serving latency | p50 and p99 latency of every model endpoint
llm-gateway | plugin | platform | U0PLT001 | llm,api | LLM gateway | Routes prompts to hosted language models with cost limits
prompt-library | repository | platform | U0PLT001 | llm,prompts | prompt-library | Versioned prompts and their evaluations
rag-notebook | notebook | platform | U0DS0001 | llm,rag | Retrieval augmented generation starter | Answers questions over internal docs with embeddings and an LLM
pii-scanner | plugin | platform | U0PLT001 | pii,privacy | PII scanner | Finds personal data in tables before they are shared
gdpr-deletions | dataset | platform | U0PLT001 | gdpr,privacy | GDPR deletion requests | Customers who asked to be forgotten and where their data lived
label-studio | plugin | platform | U0PLT001 | labels | Labelling service | Annotation projects for text and images
cost-dash | dashboard | platform | U0BIZ001 | costs | ML cost per model | Cloud cost of training and serving per model
model-registry | repository | platform | U0PLT001 | mlops | model-registry | Where trained models and their versions are stored
synthetic-data | notebook | platform | U0DS0001 | synthetic,privacy | Synthetic data generator | Generates privacy safe copies of customer tables
notebook-templates | repository | platform | U0DS0001 | templates | notebook-templates | Starter notebooks for analysis and training
old-churn | model | churn | U0MKT001 | churn,deprecated | Legacy churn scorecard | Rule based churn score from 2019, replaced by the churn predictor
old-forecast | repository | supply | U0SUP001 | deprecated,forecasting | legacy-forecast | ARIMA forecasts, replaced by demand-forecasting
old-fraud-rules | notebook | card-fraud | U0ML0001 | deprecated,fraud | Fraud rules backtest 2022 | Backtest of the old rule set
marketing-mix | model | churn | U0MKT001 | marketing,attribution | Marketing mix model | Sales contribution of TV, search and social spend
attribution | notebook | churn | U0MKT001 | marketing,attribution | Multi-touch attribution | Credits conversions to ad touchpoints
ad-spend | dataset | churn | U0MKT001 | marketing,ads | Advertising spend | Daily spend per channel and campaign
lead-scoring | model | churn | U0MKT001 | marketing,leads | B2B lead scoring | Which business leads sales should call
social-listening | notebook | finance-text | U0MKT001 | nlp,social,sentiment | Social media listening | Brand sentiment on social networks from mentions
brand-dash | dashboard | finance-text | U0MKT001 | brand,sentiment | Brand health | Brand awareness and sentiment from surveys and social
voice-of-customer | notebook | support | U0CS0001 | nlp,feedback,reviews | Voice of the customer | Themes across tickets, reviews and surveys each month
review-responses | model | support | U0CS0001 | reviews,generation | Review reply drafts | Drafts replies to public product reviews for the community team
store-clustering | notebook | supply | U0DS0001 | clustering | Store clustering | Groups stores by assortment and shopper profile
energy-forecast | model | supply | U0SUP001 | energy,forecasting | Store energy forecast | Electricity use per store for purchasing
price-scraper | plugin | pricing | U0PRC001 | scraping | Price scraper | Collects competitor prices every night
delivery-eta | model | supply | U0SUP001 | logistics,eta | Delivery time estimate | Expected delivery time shown at checkout
address-normalizer | plugin | platform | U0PLT001 | addresses | Address normalizer | Cleans and geocodes customer addresses
geo-features | dataset | platform | U0PLT001 | geo | Geographic features | Postcode level income, density and distance to stores
identity-verification | model | card-fraud | U0RSK001 | kyc,documents | Identity document check | Verifies passports and ID cards at sign-up
kyc-dash | dashboard | card-fraud | U0RSK001 | kyc,compliance | KYC backlog | Pending identity checks and their age
""".strip()

# What someone types, and the assets they are looking for (written down from the table above).
LABELLED: list[tuple[str, set[str]]] = [
    ("customer reviews nlp", {"review-sentiment", "review-corpus"}),
    ("sentiment of customer reviews", {"review-sentiment", "sentiment-dash", "review-labels"}),
    ("who predicts churn", {"churn-model"}),
    ("subscriber cancellations", {"churn-model", "survival-notebook", "churn-dash"}),
    ("kind:dashboard churn", {"churn-dash"}),
    ("fraud chargebacks", {"chargebacks"}),
    ("card transactions dataset", {"transactions"}),
    ("demand forecast stores", {"store-forecast", "forecast-dash"}),
    ("forecasting", {"store-forecast", "forecast-repo", "supply-project"}),
    ("price elasticity", {"elasticity"}),
    ("competitor prices", {"competitor-prices", "price-scraper"}),
    ("support ticket routing", {"ticket-router", "support-project"}),
    ("loan default", {"default-risk", "credit-project"}),
    ("scorecard regulators", {"scorecard"}),
    ("invoices ocr", {"invoice-extractor", "invoice-samples"}),
    ("employee attrition", {"attrition"}),
    ("resignations", {"attrition", "commute"}),
    ("recommendations home page", {"home-recs"}),
    ("product embeddings", {"product-embeddings", "similar-items"}),
    ("feature store", {"feature-store"}),
    ("drift monitoring", {"drift-monitor", "drift-study"}),
    ("tag:gdpr", {"gdpr-deletions"}),
    ("tag:deprecated kind:repository", {"old-forecast"}),
    ("owner:@fatima kind:model sentiment", {"review-sentiment"}),
    ("project:pricing kind:notebook experiments", {"price-experiments"}),
    ("kind:dataset tickets", {"tickets"}),
    ("anti money laundering", {"aml-screening"}),
    ("speech transcripts", {"call-transcripts", "speech-to-text"}),
    ("language models llm", {"llm-gateway", "prompt-library", "rag-notebook"}),
    ("fairness", {"fairness-audit", "pay-equity"}),
    ("stockouts empty shelves", {"stockouts"}),
    ("expense claims audit", {"expense-anomaly", "expense-claims"}),
    ("coupons abuse", {"coupon-fraud"}),
    ("delivery routes", {"route-optimizer"}),
    ("marketing attribution", {"marketing-mix", "attribution"}),
    ("owner:@wei search", {"search-ranking", "query-logs"}),
    ("lifetime value", {"clv-model", "clv-dash"}),
    ("satisfaction csat", {"csat-model", "csat-dash"}),
]


def _load(db) -> dict[str, str]:
    """The table above into the catalog; returns each slug's catalog key."""
    keys = {}
    with db.session() as s:
        s.execute(insert(Person), [{"slack_id": i, "name": n} for i, n in PEOPLE.items()])
        s.execute(insert(Project), [{"key": k, "name": name, "owner": owner, "risk_tier": RiskTier.low}
                                    for k, (name, owner) in PROJECTS.items()])
        for line in ASSETS.splitlines():
            slug, kind, project, owner, tags, title, description = (part.strip() for part in line.split("|"))
            asset, _ = catalog_service.add_asset(session=s, kind=kind, title=title, key=slug, project=project, owner=owner,
                                         description=description, tags=tags.split(","), actor=owner)
            keys[slug] = asset.key
    return keys


def test_the_labelled_set_is_big_enough():
    slugs = [line.split("|")[0].strip() for line in ASSETS.splitlines()]
    assert len(slugs) >= 200 and len(set(slugs)) == len(slugs)
    assert len(LABELLED) >= 30
    assert all(relevant <= set(slugs) for _, relevant in LABELLED)


def test_recall_at_5_is_at_least_0_9(db):
    keys = _load(db)
    recalls, misses = [], []
    with db.session() as s:
        for query, relevant in LABELLED:
            top = {a.key for a in catalog.search(session=s, query=query, limit=5).assets}
            found = {slug for slug in relevant if keys[slug] in top}
            recalls.append(len(found) / len(relevant))
            if found != relevant:
                misses.append(f"{query!r} missed {sorted(relevant - found)}")
    recall = sum(recalls) / len(recalls)
    print(f"recall@5 on {db.engine.dialect.name}: {recall:.3f}; " + "; ".join(misses))
    assert recall >= 0.9, misses


def test_plural_and_singular_find_the_same_review_assets(db):
    keys = _load(db)
    with db.session() as s:
        found = [[a.key for a in catalog.search(session=s, query=q, limit=10).assets] for q in ("reviews", "review")]
    assert found[0] == found[1]
    assert {keys["review-sentiment"], keys["review-corpus"], keys["review-labels"]} <= set(found[0])
