-- What one viewer did to a batch of tweets: liked, retweeted.
-- KEYS[1]: likes:{V}, KEYS[2]: retweets:{V} (storage/tweet_counts.py names both; one slot).
-- ARGV: the tweets' 16-byte refs (tweet id, author id, big-endian).
-- Returns one integer per ref: 1 liked + 2 retweeted.
local liked = redis.call('ZMSCORE', KEYS[1], unpack(ARGV))
local retweeted = redis.call('HMGET', KEYS[2], unpack(ARGV))
local flags = {}
for i = 1, #ARGV do
  flags[i] = (liked[i] and 1 or 0) + (retweeted[i] and 2 or 0)
end
return flags
