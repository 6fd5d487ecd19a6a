package demo

import "strings"

// pair is a piece of Chinese text together with an ASCII romanisation
// (toneless pinyin) used to derive plausible e-mail addresses.
type pair struct{ zh, py string }

// pairs parses "汉 han 字 zi ..." into pairs.
func pairs(s string) []pair {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		panic("demo: odd pair table")
	}
	out := make([]pair, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		out = append(out, pair{f[i], f[i+1]})
	}
	return out
}

// Single-character surnames, roughly in order of frequency: the generator
// picks from this list with a bias toward the front.
var surnames = pairs(`
王 wang 李 li 张 zhang 刘 liu 陈 chen 杨 yang 黄 huang 赵 zhao 吴 wu 周 zhou
徐 xu 孙 sun 马 ma 朱 zhu 胡 hu 郭 guo 何 he 高 gao 林 lin 罗 luo
郑 zheng 梁 liang 谢 xie 宋 song 唐 tang 许 xu 韩 han 冯 feng 邓 deng 曹 cao
彭 peng 曾 zeng 肖 xiao 田 tian 董 dong 袁 yuan 潘 pan 于 yu 蒋 jiang 蔡 cai
余 yu 杜 du 叶 ye 程 cheng 苏 su 魏 wei 吕 lv 丁 ding 任 ren 沈 shen
姚 yao 卢 lu 姜 jiang 崔 cui 钟 zhong 谭 tan 陆 lu 汪 wang 范 fan 金 jin
石 shi 廖 liao 贾 jia 夏 xia 韦 wei 付 fu 方 fang 白 bai 邹 zou 孟 meng
熊 xiong 秦 qin 邱 qiu 江 jiang 尹 yin 薛 xue 闫 yan 段 duan 雷 lei 侯 hou
龙 long 史 shi 陶 tao 黎 li 贺 he 顾 gu 毛 mao 郝 hao 龚 gong 邵 shao
万 wan 钱 qian 严 yan 覃 qin 武 wu 戴 dai 莫 mo 孔 kong 向 xiang 汤 tang
常 chang 温 wen 康 kang 施 shi 文 wen 牛 niu 樊 fan 葛 ge 邢 xing 安 an
齐 qi 易 yi 乔 qiao 伍 wu 庞 pang 颜 yan 倪 ni 庄 zhuang 聂 nie 章 zhang
鲁 lu 岳 yue 翟 zhai 殷 yin 詹 zhan 申 shen 欧 ou 耿 geng 关 guan 兰 lan
焦 jiao 俞 yu 左 zuo 柳 liu 甘 gan 祝 zhu 包 bao 宁 ning 尚 shang 符 fu
舒 shu 阮 ruan 柯 ke 纪 ji 梅 mei 童 tong 凌 ling 毕 bi 单 shan 季 ji
裴 pei 霍 huo 涂 tu 成 cheng 苗 miao 谷 gu 盛 sheng 曲 qu 翁 weng 冉 ran
骆 luo 蓝 lan 路 lu 游 you 辛 xin 靳 jin 管 guan 柴 chai 蒙 meng 鲍 bao
华 hua 喻 yu 祁 qi 蒲 pu 房 fang 滕 teng 屈 qu 饶 rao 解 xie 牟 mou
艾 ai 尤 you 阳 yang 时 shi 穆 mu 农 nong 司 si 卓 zhuo 古 gu 吉 ji
缪 miao 简 jian 车 che 项 xiang 连 lian 芦 lu 麦 mai 褚 chu 娄 lou 窦 dou
戚 qi 岑 cen 景 jing 党 dang 宫 gong 费 fei 卜 bu 冷 leng 晏 yan 席 xi
卫 wei 米 mi 柏 bai 宗 zong 瞿 qu 桂 gui 全 quan 佟 tong 应 ying 臧 zang
闵 min 苟 gou 邬 wu 边 bian 卞 bian 姬 ji 师 shi 仇 qiu 栾 luan 隋 sui
商 shang 刁 diao 沙 sha 荣 rong 巫 wu 寇 kou 桑 sang 郎 lang 甄 zhen 丛 cong
仲 zhong 虞 yu 敖 ao 巩 gong 佘 she 池 chi 查 zha 苑 yuan 迟 chi 邝 kuang
`)

var compoundSurnames = pairs(`
欧阳 ouyang 司马 sima 上官 shangguan 诸葛 zhuge 东方 dongfang 慕容 murong
皇甫 huangfu 令狐 linghu 夏侯 xiahou 尉迟 yuchi 司徒 situ 公孙 gongsun
`)

var maleGiven = pairs(`
伟 wei 强 qiang 磊 lei 军 jun 洋 yang 勇 yong 杰 jie 涛 tao 明 ming 超 chao
斌 bin 鹏 peng 辉 hui 刚 gang 平 ping 波 bo 建 jian 国 guo 华 hua 文 wen
俊 jun 峰 feng 浩 hao 宇 yu 晨 chen 博 bo 志 zhi 海 hai 鑫 xin 亮 liang
东 dong 林 lin 龙 long 飞 fei 凯 kai 健 jian 帅 shuai 成 cheng 永 yong 子 zi
轩 xuan 睿 rui 泽 ze 天 tian 佳 jia 新 xin 良 liang 伦 lun 毅 yi 宏 hong
瑞 rui 锋 feng 振 zhen 嘉 jia 立 li 光 guang 德 de 兵 bing 旭 xu 阳 yang
卫 wei 庆 qing 金 jin 荣 rong 春 chun 晓 xiao 思 si 一 yi
昊 hao 然 ran 铭 ming 哲 zhe 航 hang 奕 yi 钧 jun 皓 hao 霖 lin 逸 yi
恒 heng 安 an 景 jing 煜 yu 彬 bin 豪 hao 松 song 坤 kun 岩 yan 祥 xiang
炜 wei 晖 hui 骏 jun 翔 xiang 承 cheng 朗 lang 耀 yao 鸿 hong 琦 qi 诚 cheng
`)

var femaleGiven = pairs(`
芳 fang 娜 na 敏 min 静 jing 丽 li 艳 yan 娟 juan 霞 xia 秀 xiu 英 ying
玲 ling 燕 yan 婷 ting 雪 xue 慧 hui 颖 ying 琳 lin 倩 qian 晶 jing 欣 xin
怡 yi 悦 yue 佳 jia 梦 meng 蕾 lei 薇 wei 萍 ping 红 hong 梅 mei 兰 lan
洁 jie 莉 li 雯 wen 璐 lu 瑶 yao 思 si 雨 yu 涵 han 诗 shi 琪 qi
晓 xiao 春 chun 丹 dan 露 lu 美 mei 宁 ning 桂 gui 凤 feng 月 yue 楠 nan
彤 tong 菲 fei 蓉 rong 云 yun 青 qing 文 wen 亚 ya 婉 wan 珊 shan 秋 qiu
玉 yu 小 xiao 嘉 jia 欢 huan 妍 yan 可 ke 馨 xin 如 ru 雅 ya 晴 qing
婧 jing 琴 qin 素 su 淑 shu 蓓 bei 莹 ying 芸 yun 霏 fei 婕 jie 昕 xin
岚 lan 雁 yan 芝 zhi 琼 qiong 萱 xuan 蔓 man 筱 xiao 艺 yi 璇 xuan 娅 ya
滢 ying 瑾 jin 曼 man 琬 wan 妮 ni 惠 hui 佩 pei 清 qing 卉 hui 茹 ru
`)

var englishMale = strings.Fields(`
James John Robert Michael William David Richard Joseph Thomas Charles Daniel
Matthew Anthony Mark Steven Paul Andrew Joshua Kevin Brian George Edward Ryan
Jason Eric Jacob Peter Henry Jack Samuel Benjamin Alexander Patrick Frank
Oliver Lucas Nathan Adam Simon Vincent Tony Leo Jerry Martin Chris Alan Ivan
Jeff Ken Max Sam Victor Allen Terry Felix
Aaron Albert Andy Arthur Austin Ben Bill Bob Bruce Carl Colin Dennis Derek
Dylan Ethan Evan Gary Gordon Harry Ian Jay Jim Joe Jonathan Justin Keith Kyle
Larry Liam Louis Luke Marcus Neil Noah Owen Philip Ray Roger Ron Sean Stanley
Stephen Steve Timothy Tom Travis Wayne Will Zack Hugo Jasper Eddie Elliot Gavin`)

var englishFemale = strings.Fields(`
Mary Patricia Jennifer Linda Elizabeth Susan Jessica Sarah Karen Lisa Nancy
Emily Michelle Amanda Melissa Rebecca Laura Amy Anna Grace Emma Olivia Sophia
Chloe Hannah Rachel Lucy Helen Alice Vivian Cindy Angela Nicole Rose Zoe Claire
Irene Fiona Sophie Natalie Victoria Joyce Wendy Sandy Judy Cherry Coco Ella
Kate Lily Mia Nina Tina Yvonne Abby Alicia Ann Ashley Audrey Bella Betty
Bonnie Carol Catherine Christina Daisy Diana Doris Eva Esther Flora Gloria
Heather Ivy Jane Janet Jasmine Jenny Joanna Julia Kimberly Leah Lillian Lydia
Maggie Megan Monica Olive Pamela Penny Ruby Sabrina Sally Shirley Stella
Summer Teresa Tracy Vera Winnie Yolanda`)

var englishLast = strings.Fields(`
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Thompson
White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill
Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker
Evans Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper
Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett
Gray Hughes Price Sanders Myers Long Ross Foster Powell Jenkins Perry Russell
Sullivan Fisher Hayes Graham Wallace Cole West Jordan Reynolds Hamilton Ford
Marshall Owens Fraser Schmidt Tanaka Suzuki Kim Park Nguyen Singh Patel Rossi
Dubois Weber Novak Larsen Moreau Ferrari Becker Hoffmann Chan Wong Tan Lim Ng
Barnes Henderson Coleman Simmons Patterson Butler Simpson Gibson Ellis Stevens
Tucker Porter Hunter Hicks Crawford Boyd Mason Morales Kennedy Warren Dixon
Ramos Burns Gordon Shaw Holmes Rice Robertson Hunt Black Daniels Palmer Mills
Nichols Grant Knight Ferguson Stone Hawkins Dunn Perkins Hudson Spencer Gardner
Stephens Payne Pierce Berry Matthews Arnold Wagner Willis Watkins Olson Carroll
Duncan Snyder Hart Cunningham Bradley Lane Andrews Ruiz Harper Fox Riley
Armstrong Carpenter Weaver Greene Lawrence Elliott Chavez Sims Peters Kelley
Franklin Lawson Fields Schneider Fischer Meyer Wolf Bauer Richter Klein Neumann
Zimmermann Lambert Fontaine Girard Bernard Laurent Romano Colombo Ricci Bruno
Conti Yamamoto Watanabe Ito Nakamura Kobayashi Sato Choi Jung Kang Tran Pham
Hoang Goh Teo Koh Lau Cheung Leung Ho Yeung Sharma Gupta Kumar Murray Walsh
Byrne Quinn Doyle Lynch Nolan Gallagher`)

// Characters used for Chinese company brand names (字号).
var brandChars = pairs(`
云 yun 启 qi 华 hua 信 xin 达 da 锦 jin 程 cheng 鼎 ding 盛 sheng 恒 heng
瑞 rui 泰 tai 宏 hong 远 yuan 博 bo 创 chuang 新 xin 通 tong 联 lian 众 zhong
和 he 祥 xiang 安 an 康 kang 海 hai 天 tian 中 zhong 金 jin 银 yin 万 wan
嘉 jia 凯 kai 腾 teng 越 yue 卓 zhuo 智 zhi 汇 hui 源 yuan 润 run 德 de
诚 cheng 隆 long 昌 chang 兴 xing 鑫 xin 晟 sheng 弘 hong 辰 chen 星 xing 辉 hui
泽 ze 永 yong 富 fu 力 li 科 ke 思 si 图 tu 蓝 lan 悦 yue 峰 feng
明 ming 光 guang 美 mei 优 you 捷 jie 迅 xun 维 wei 佳 jia 立 li 道 dao
`)

// Industry codes and weights.
var industries = []weighted{
	{"manufacturing", 18}, {"software", 16}, {"retail", 14}, {"finance", 8},
	{"education", 7}, {"healthcare", 8}, {"logistics", 10}, {"real_estate", 7},
	{"energy", 6}, {"agriculture", 6},
}

var levels = []weighted{{"a", 12}, {"b", 35}, {"c", 38}, {"d", 15}}

var sources = []weighted{
	{"referral", 20}, {"website", 20}, {"exhibition", 12}, {"cold_call", 12},
	{"partner", 10}, {"wechat", 18}, {"advertising", 8},
}

var statuses = []weighted{
	{"lead", 25}, {"prospect", 25}, {"active", 30}, {"dormant", 12}, {"lost", 8},
}

var interactionKinds = []weighted{
	{"call", 35}, {"visit", 12}, {"meeting", 15}, {"email", 23}, {"note", 15},
}

// Industry words for company names, per industry code.
var industryWordsZH = map[string][]string{
	"software":      {"科技", "信息技术", "软件", "网络科技", "数据科技", "智能科技"},
	"manufacturing": {"机械", "电子", "精密制造", "新材料", "自动化设备", "五金制品"},
	"retail":        {"商贸", "国际贸易", "电子商务", "百货", "贸易"},
	"finance":       {"投资管理", "资产管理", "融资租赁", "财务咨询", "保险代理"},
	"education":     {"教育科技", "文化传播", "培训", "教育咨询"},
	"healthcare":    {"医疗器械", "生物科技", "医药", "健康管理", "医疗科技"},
	"logistics":     {"物流", "供应链管理", "国际货运代理", "仓储服务", "速运"},
	"real_estate":   {"房地产开发", "置业", "物业管理", "地产经纪"},
	"energy":        {"新能源", "能源科技", "电力工程", "光伏科技", "环保能源"},
	"agriculture":   {"农业科技", "生态农业", "食品", "农产品", "种业"},
}

var industryWordsEN = map[string][]string{
	"software":      {"Technologies", "Software", "Systems", "Digital", "Labs"},
	"manufacturing": {"Manufacturing", "Industries", "Precision", "Components", "Machinery"},
	"retail":        {"Trading", "Retail", "Commerce", "Goods"},
	"finance":       {"Capital", "Partners", "Financial", "Investments"},
	"education":     {"Education", "Learning", "Academy"},
	"healthcare":    {"Medical", "Health", "Biotech", "Pharma"},
	"logistics":     {"Logistics", "Shipping", "Freight", "Supply Chain"},
	"real_estate":   {"Properties", "Realty", "Estates", "Development"},
	"energy":        {"Energy", "Power", "Solar", "Renewables"},
	"agriculture":   {"Agritech", "Farms", "Foods", "Agriculture"},
}

var companySuffixZH = []weighted{
	{"有限公司", 60}, {"股份有限公司", 15}, {"有限责任公司", 10}, {"集团有限公司", 8}, {"branch", 7},
}

var brandWordEN = strings.Fields(`
Blue Northwind Silver Golden Red Pacific Summit Evergreen Apex Bright Crystal
Eastern Grand Iron Jade Lotus Maple Nova Oak Orient Pioneer Quantum River
Sterling Sun Titan Unity Vertex Westlake Harbor Bamboo Dragon Phoenix Cedar
Falcon Granite Horizon Keystone Lighthouse Meridian Northstar Redwood Sapphire
Skyline Willow Zenith Amber Coral Delta Ember Frontier Atlas Beacon Cobalt
Crown Eagle Everest Fortune Galaxy Global Greenfield Highland Imperial Infinity
Legacy Liberty Magnolia Monarch Nexus Oasis Orchid Pinnacle Prime Radiant Royal
Sequoia Sierra Spring Starlight Sunrise Tiger Trinity Velocity Vista`)

var brandWord2EN = strings.Fields(`
Harbor Bridge Peak Stone Field Point Gate Wave Star Ridge Bay Crest Valley
Rock Leaf Hill Path Line Port Link Bridgeway Brook Cove Creek Forge Grove
Haven Isle Lake Landing Mark Mill Moon Ocean Pine Shore Sky Spring Tree Works
Wind Wing`)

var companySuffixEN = []weighted{
	{"Ltd.", 25}, {"Co., Ltd.", 20}, {"Co.", 10}, {"Inc.", 15}, {"LLC", 8},
	{"Limited", 8}, {"Pte. Ltd.", 6}, {"GmbH", 3}, {"(HK) Limited", 5},
}

// district is a city district with its resident ID area code.
type district struct{ name, code string }

type location struct {
	province  string // empty for municipalities
	city      string // 杭州市
	short     string // 杭州
	region    string // sales region tag
	areaCode  string // landline area code, with leading 0
	weight    int
	districts []district
	streets   []string
}

var locations = []location{
	{"", "北京市", "北京", "华北区", "010", 14, []district{{"东城区", "110101"}, {"西城区", "110102"}, {"朝阳区", "110105"}, {"丰台区", "110106"}, {"海淀区", "110108"}},
		[]string{"建国路", "建国门外大街", "中关村大街", "知春路", "西直门外大街", "朝阳门北大街", "酒仙桥路"}},
	{"", "上海市", "上海", "华东区", "021", 14, []district{{"黄浦区", "310101"}, {"徐汇区", "310104"}, {"长宁区", "310105"}, {"静安区", "310106"}, {"闵行区", "310112"}, {"浦东新区", "310115"}},
		[]string{"南京西路", "淮海中路", "世纪大道", "张江路", "漕溪北路", "虹桥路", "延安西路", "陆家嘴环路"}},
	{"", "天津市", "天津", "华北区", "022", 4, []district{{"和平区", "120101"}, {"河西区", "120103"}, {"南开区", "120104"}},
		[]string{"南京路", "友谊路", "卫津路", "解放北路"}},
	{"", "重庆市", "重庆", "西南区", "023", 4, []district{{"渝中区", "500103"}, {"江北区", "500105"}, {"渝北区", "500112"}},
		[]string{"民族路", "建新北路", "金开大道", "中山三路"}},
	{"广东省", "深圳市", "深圳", "华南区", "0755", 12, []district{{"罗湖区", "440303"}, {"福田区", "440304"}, {"南山区", "440305"}, {"宝安区", "440306"}, {"龙岗区", "440307"}},
		[]string{"深南大道", "科技园南路", "华强北路", "滨海大道", "宝安大道", "龙岗大道", "科苑路"}},
	{"广东省", "广州市", "广州", "华南区", "020", 10, []district{{"越秀区", "440104"}, {"海珠区", "440105"}, {"天河区", "440106"}, {"白云区", "440111"}, {"番禺区", "440113"}},
		[]string{"天河路", "体育西路", "珠江东路", "环市东路", "江南大道中", "广州大道北"}},
	{"浙江省", "杭州市", "杭州", "华东区", "0571", 10, []district{{"上城区", "330102"}, {"拱墅区", "330105"}, {"西湖区", "330106"}, {"滨江区", "330108"}, {"余杭区", "330110"}},
		[]string{"文三路", "文一西路", "天目山路", "江南大道", "莫干山路", "钱江路", "网商路"}},
	{"浙江省", "宁波市", "宁波", "华东区", "0574", 4, []district{{"海曙区", "330203"}, {"江北区", "330205"}, {"鄞州区", "330212"}},
		[]string{"中山东路", "天童南路", "江东北路", "宁穿路"}},
	{"江苏省", "南京市", "南京", "华东区", "025", 6, []district{{"玄武区", "320102"}, {"秦淮区", "320104"}, {"鼓楼区", "320106"}, {"江宁区", "320115"}},
		[]string{"中山路", "汉中路", "中山南路", "龙蟠中路", "双龙大道"}},
	{"江苏省", "苏州市", "苏州", "华东区", "0512", 7, []district{{"虎丘区", "320505"}, {"吴中区", "320506"}, {"相城区", "320507"}, {"姑苏区", "320508"}},
		[]string{"星湖街", "人民路", "干将西路", "金鸡湖大道", "狮山路"}},
	{"四川省", "成都市", "成都", "西南区", "028", 6, []district{{"锦江区", "510104"}, {"青羊区", "510105"}, {"金牛区", "510106"}, {"武侯区", "510107"}, {"成华区", "510108"}},
		[]string{"天府大道北段", "人民南路", "蜀都大道", "科华北路", "建设路"}},
	{"湖北省", "武汉市", "武汉", "华中区", "027", 5, []district{{"江岸区", "420102"}, {"江汉区", "420103"}, {"武昌区", "420106"}, {"洪山区", "420111"}},
		[]string{"中山大道", "解放大道", "武珞路", "珞喻路", "光谷大道"}},
	{"陕西省", "西安市", "西安", "西北区", "029", 4, []district{{"新城区", "610102"}, {"碑林区", "610103"}, {"雁塔区", "610113"}},
		[]string{"高新路", "长安北路", "科技路", "唐延路"}},
	{"山东省", "青岛市", "青岛", "华北区", "0532", 4, []district{{"市南区", "370202"}, {"市北区", "370203"}, {"崂山区", "370212"}},
		[]string{"香港中路", "山东路", "辽阳西路", "海尔路"}},
	{"福建省", "厦门市", "厦门", "华南区", "0592", 3, []district{{"思明区", "350203"}, {"湖里区", "350206"}},
		[]string{"鹭江道", "湖滨南路", "嘉禾路", "观日路"}},
	{"湖南省", "长沙市", "长沙", "华中区", "0731", 3, []district{{"芙蓉区", "430102"}, {"天心区", "430103"}, {"岳麓区", "430104"}},
		[]string{"五一大道", "芙蓉中路", "解放西路", "麓谷大道"}},
}

// Additional ID area codes (places of birth) beyond the districts above.
var extraAreaCodes = strings.Fields(`
130102 410105 340104 360102 450103 530102 210102 220102 230103 140105
620102 370102 350102 320583 330382 441900 442000 520102 150102 460106`)

var buildingsZH = strings.Fields(`
华星时代广场 国际金融中心 环球中心 科技大厦 创业大厦 时代广场 世贸中心
财富中心 万达广场 国贸大厦 创新大厦 汇智大厦 中心大厦 金融大厦 商务中心
科创中心 嘉里中心 银泰中心 恒隆广场 来福士广场 软件园 数码港大厦`)

var parksZH = strings.Fields(`工业园 科技园 产业园 物流园 创意园 智造园`)

type cityEN struct {
	zh, name, post string
	districts      []string
	streets        []string
}

var citiesEN = []cityEN{
	{"上海", "Shanghai", "200", []string{"Pudong New Area", "Jing'an District", "Xuhui District", "Huangpu District"},
		[]string{"Century Avenue", "Nanjing West Road", "Huaihai Middle Road", "Zhangjiang Road", "Lujiazui Ring Road"}},
	{"北京", "Beijing", "100", []string{"Chaoyang District", "Haidian District", "Dongcheng District", "Xicheng District"},
		[]string{"Jianguo Road", "Jianguomenwai Avenue", "Zhongguancun Street", "Zhichun Road"}},
	{"深圳", "Shenzhen", "518", []string{"Futian District", "Nanshan District", "Luohu District", "Bao'an District"},
		[]string{"Shennan Boulevard", "Keyuan Road", "Huaqiang North Road", "Binhai Avenue"}},
	{"广州", "Guangzhou", "510", []string{"Tianhe District", "Yuexiu District", "Haizhu District"},
		[]string{"Tianhe Road", "Zhujiang East Road", "Huanshi East Road", "Tiyu West Road"}},
	{"杭州", "Hangzhou", "310", []string{"Xihu District", "Binjiang District", "Gongshu District"},
		[]string{"Wensan Road", "Jiangnan Avenue", "Tianmushan Road", "Qianjiang Road"}},
	{"苏州", "Suzhou", "215", []string{"Suzhou Industrial Park", "Gusu District", "Wuzhong District"},
		[]string{"Xinghu Street", "Suzhou Avenue East", "Jinji Lake Avenue"}},
	{"成都", "Chengdu", "610", []string{"Wuhou District", "Jinjiang District", "High-tech Zone"},
		[]string{"Tianfu Avenue North", "Renmin South Road", "Jiaozi Avenue"}},
}

var buildingsEN = strings.Fields(`
Huaxing_Times_Square International_Finance_Centre China_World_Tower
Kerry_Centre Tech_Plaza Innovation_Tower Fortune_Plaza Century_Link_Tower
Raffles_City Global_Trade_Center`)

var tagsZH = strings.Fields(`重点客户 老客户 政府项目 展会 大客户 待回款 潜在续约 价格敏感 需要发票 渠道 国企 上市公司 转介绍`)
var tagsEN = strings.Fields(`vip renewal upsell key-account trial churn-risk enterprise SMB partner overseas`)

var titlesZH = strings.Fields(`总经理 副总经理 董事长 采购经理 采购主管 财务总监 财务经理 IT_主管 信息部经理
技术总监 行政经理 销售总监 运营经理 项目经理 人事经理 法务经理 总经理助理 市场部经理`)

var titlesEN = strings.Fields(`CEO CTO CFO COO Procurement_Manager Purchasing_Director IT_Manager
Head_of_Operations Finance_Manager Office_Manager Project_Manager Sales_Director
General_Manager VP_Engineering Marketing_Manager HR_Director`)

var personalDomainsZH = []weighted{
	{"qq.com", 30}, {"163.com", 25}, {"126.com", 10}, {"sina.com", 5}, {"sohu.com", 3},
	{"foxmail.com", 6}, {"gmail.com", 6}, {"outlook.com", 5}, {"hotmail.com", 3},
	{"yeah.net", 2}, {"aliyun.com", 2}, {"139.com", 3},
}

var personalDomainsEN = []weighted{
	{"gmail.com", 40}, {"outlook.com", 20}, {"hotmail.com", 10}, {"yahoo.com", 10},
	{"icloud.com", 10}, {"proton.me", 3}, {"163.com", 4}, {"qq.com", 3},
}

var roleMailboxes = strings.Fields(`info sales service contact marketing admin hr support bd purchase`)

var notesZH = []string{
	"客户对报价比较敏感，下周二再跟进。",
	"老板亲自拍板，采购只负责走流程。",
	"去年合作过一次，反馈还不错。",
	"需要先出一版方案，月底前给到对方。",
	"对方正在和两家竞品比较，价格压力大。",
	"决策周期长，预计下季度才能立项。",
	"预算大约 %d 万，年底前要定下来。",
	"要求开增值税专用发票。",
	"财务流程比较慢，回款一般要 %d 天。",
	"客户希望能先试用一个月。",
	"联系人刚换，需要重新建立关系。",
	"对数据安全很关注，问了好几次私有化部署。",
	"展会上留的名片，意向一般。",
	"朋友介绍的客户，信任度比较高。",
	"春节后再联系，节前不方便。",
	"已发合同草稿，等法务审核。",
	"上次拜访时见到了总经理，印象不错。",
	"对售后服务要求高，需要本地支持。",
	"有扩容需求，可以推荐升级套餐。",
	"微信沟通为主，电话不太接。",
	"第一期已上线，二期在谈。",
	"付款方式希望分三期。",
	"客户暂时没有预算，保持联系即可。",
	"对接人是技术出身，讲产品细节比较有用。",
	"合同 %d 月份到期，提前两个月沟通续约。",
	"希望和他们的 ERP 系统对接。",
}

var notesEN = []string{
	"Asked for a demo of the reporting module.",
	"Very price sensitive; follow up next Tuesday.",
	"The GM makes the decision, procurement only handles paperwork.",
	"Budget is roughly %d0k RMB, needs sign-off before year end.",
	"Currently comparing us with two competitors.",
	"Wants a one-month trial before committing.",
	"Requested a formal quotation with a VAT invoice.",
	"Met at the trade show, moderate interest.",
	"Referred by an existing customer, warm lead.",
	"Contract draft sent, waiting for legal review.",
	"Concerned about data security and on-premise deployment.",
	"Payment terms: 30% upfront, 70% on delivery.",
	"Our contact changed roles; need to rebuild the relationship.",
	"Phase one is live, negotiating phase two.",
	"No budget this quarter, keep in touch.",
	"Prefers WeChat over email.",
	"Interested in integrating with their ERP.",
	"Renewal due in %d months.",
	"Needs Chinese and English invoices for head office.",
}

var contactNotesZH = []string{
	"实际决策人。", "喜欢微信沟通，电话常不接。", "下午比较好联系。", "新上任，需要重新建立关系。",
	"负责技术评估。", "对我们印象不错。", "比较强势，谈价格要注意。", "只看邮件，不太回微信。",
	"老板的亲戚，说话有分量。", "下个月休假两周。",
}

var contactNotesEN = []string{
	"Decision maker.", "Prefers email over phone.", "Technical evaluator for the project.",
	"New to the account.", "Best reached after 3pm.", "Friendly, supports our proposal.",
	"Reports to the regional director.", "Out of office most Fridays.",
}

// Interaction summaries; {who} is replaced by how the other side is addressed.
var summariesZH = map[string][]string{
	"call": {
		"电话沟通了续约事宜，{who}希望价格再降一点。", "给{who}打电话确认需求，对方下周出差。",
		"{who}电话里说方案已经提交给老板了。", "电话没人接，稍后再打。", "和{who}确认了发货时间。",
		"回访电话，{who}对使用情况比较满意。", "{who}来电咨询开票和付款流程。",
	},
	"visit": {
		"上门拜访{who}，参观了工厂，产线在扩建。", "拜访客户，演示了移动端功能，反响不错。",
		"到客户现场处理数据导入问题，已解决。", "和{who}吃了顿饭，聊了明年的计划。",
	},
	"meeting": {
		"和{who}开会讨论实施计划，确定了上线时间。", "线上会议演示报表模块，IT 部门参加。",
		"项目启动会，双方对接人已明确。", "商务谈判，价格基本谈妥，等盖章。", "和{who}做季度回顾，提了三个改进需求。",
	},
	"email": {
		"给{who}发了报价单和产品资料。", "邮件发送合同草稿，请对方审核。",
		"收到{who}的邮件，询问发票抬头。", "发送会议纪要和下一步计划。",
	},
	"note": {
		"客户内部在调整组织架构，项目可能延后。", "听说竞品报了更低的价格。",
		"{who}下个月休假，需要找新的对接人。", "已提交特价申请，等待审批。", "客户已付首款 %d 万。",
	},
}

var summariesEN = map[string][]string{
	"call": {
		"Called {who} about the renewal; they want a lower price.", "Quick call with {who} to confirm requirements.",
		"No answer, will try again tomorrow.", "{who} confirmed the delivery schedule by phone.",
		"Follow-up call: {who} is happy with the rollout so far.", "{who} called asking about invoicing and payment.",
	},
	"visit": {
		"Visited {who} on site and toured the factory.", "On-site demo of the mobile app, good reception.",
		"Went on site to fix a data import issue; resolved.", "Lunch with {who}, discussed next year's plans.",
	},
	"meeting": {
		"Kick-off meeting with {who}; go-live date agreed.", "Online meeting to demo the reporting module, IT attended.",
		"Negotiation meeting, price mostly agreed, waiting for the company chop.", "Quarterly business review with {who}.",
	},
	"email": {
		"Sent {who} the quotation and product brochure.", "Emailed the draft contract for review.",
		"{who} asked which entity to put on the invoice.", "Sent meeting minutes and next steps.",
	},
	"note": {
		"Customer is reorganizing internally, project may slip.", "Heard a competitor quoted a lower price.",
		"{who} is going on leave next month; need a new contact.", "Special discount request submitted, pending approval.",
		"First payment of %d0k RMB received.",
	},
}

var mobilePrefixes = strings.Fields(`
130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159
170 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189
191 193 195 196 197 198 199`)

// Cumulative weights, computed once.
type weighted struct {
	code string
	w    int
}

func total(ws []weighted) int {
	t := 0
	for _, w := range ws {
		t += w.w
	}
	return t
}

var locationTotal = func() int {
	t := 0
	for _, l := range locations {
		t += l.weight
	}
	return t
}()

// underscores in word tables stand for spaces (strings.Fields splits on them).
func init() {
	for _, s := range [][]string{titlesZH, titlesEN, buildingsEN} {
		for i := range s {
			s[i] = strings.ReplaceAll(s[i], "_", " ")
		}
	}
}
